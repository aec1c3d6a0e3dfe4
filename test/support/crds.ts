/**
 * Many CustomResourceDefinitions, the way Crossplane providers bring them: a few dozen API groups,
 * hundreds of kinds, half namespaced and half cluster-scoped, small schemas. Shared by the scale
 * test and the benchmark; the caller supplies the HTTP call (admin credentials).
 */

export type Send = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ readonly status: number; readonly text: string }>

export interface SyntheticType {
  readonly group: string
  readonly version: string
  readonly kind: string
  readonly plural: string
  readonly namespaced: boolean
}

/** The i-th type of a fleet (`prefix` keeps fleets of different tests apart). */
export const syntheticType = (prefix: string, i: number, groups = 35): SyntheticType => ({
  group: `${prefix}${i % groups}.scale.example.com`,
  version: "v1alpha1",
  kind: `${prefix[0]!.toUpperCase()}${prefix.slice(1)}Widget${i}`,
  plural: `${prefix}widget${i}s`,
  namespaced: i % 2 === 0,
})

export const crdManifest = (type: SyntheticType) => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${type.plural}.${type.group}` },
  spec: {
    group: type.group,
    scope: type.namespaced ? "Namespaced" : "Cluster",
    names: {
      plural: type.plural,
      singular: type.plural.slice(0, -1),
      kind: type.kind,
      listKind: `${type.kind}List`,
    },
    versions: [
      {
        name: type.version,
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: { spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        },
      },
    ],
  },
})

const collection = (type: SyntheticType, namespace: string) =>
  `/apis/${type.group}/${type.version}${type.namespaced ? `/namespaces/${namespace}` : ""}/${type.plural}`

/** The receiver's id of one object of the type (the contract's `namespace/apiVersion/Kind/name`). */
export const syntheticId = (type: SyntheticType, namespace: string, name: string): string =>
  `${type.namespaced ? namespace : "_cluster"}/${type.group}/${type.version}/${type.kind}/${name}`

const pool = async (count: number, concurrency: number, task: (i: number) => Promise<void>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++)
    }),
  )
}

const ok = (what: string, res: { status: number; text: string }, accepted: ReadonlyArray<number>) => {
  if (!accepted.includes(res.status))
    throw new Error(`${what}: HTTP ${res.status}: ${res.text.slice(0, 300)}`)
}

/**
 * Creates the CRDs, waits until every one is Established, then creates one object in each of the
 * first `withObjects` types (in `namespace` when namespaced). Returns the ids the receiver must see.
 */
export const createFleet = async (
  send: Send,
  options: {
    readonly prefix: string
    readonly count: number
    readonly withObjects: number
    readonly namespace: string
    readonly concurrency?: number
    readonly progress?: (line: string) => void
  },
): Promise<{ readonly types: ReadonlyArray<SyntheticType>; readonly ids: ReadonlyArray<string> }> => {
  const concurrency = options.concurrency ?? 8
  const types = Array.from({ length: options.count }, (_, i) => syntheticType(options.prefix, i))
  await pool(types.length, concurrency, async (i) => {
    const res = await send(
      "POST",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      crdManifest(types[i]!),
    )
    ok(`CRD ${types[i]!.plural}`, res, [201, 409])
    if ((i + 1) % 200 === 0) options.progress?.(`  … ${i + 1}/${types.length} CRDs created`)
  })
  // Established means served: objects can be created and discovery lists the type.
  const pending = new Set(types.map((t) => `${t.plural}.${t.group}`))
  for (let attempt = 0; pending.size > 0; attempt++) {
    if (attempt > 600) throw new Error(`${pending.size} CRDs not Established after 5 minutes`)
    const res = await send("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    ok("list CRDs", res, [200])
    const list = JSON.parse(res.text) as {
      items: Array<{
        metadata: { name: string }
        status?: { conditions?: Array<{ type: string; status: string }> }
      }>
    }
    for (const crd of list.items) {
      if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) {
        pending.delete(crd.metadata.name)
      }
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 500))
  }
  const ids: Array<string> = []
  const withObjects = types.slice(0, options.withObjects)
  await pool(withObjects.length, concurrency, async (i) => {
    const type = withObjects[i]!
    const name = `one-${i}`
    // A freshly Established type can still answer 404 for a moment while its handler starts.
    for (let attempt = 0; ; attempt++) {
      const res = await send("POST", collection(type, options.namespace), {
        apiVersion: `${type.group}/${type.version}`,
        kind: type.kind,
        metadata: { name, labels: { fleet: options.prefix } },
        spec: { size: i },
      })
      if (res.status === 404 && attempt < 50) {
        await new Promise((r) => setTimeout(r, 200))
        continue
      }
      ok(`${type.kind} ${name}`, res, [201, 409])
      break
    }
    ids.push(syntheticId(type, options.namespace, name))
  })
  return { types, ids }
}

/**
 * Waits until the API server serves every type of the fleet from its watch cache (a LIST at
 * resourceVersion 0 answers 200). A freshly Established CRD's cache initialises a moment later;
 * meanwhile watches are answered "storage is (re)initializing", which a benchmark of the
 * controller's start-up should not be measuring.
 */
export const awaitWatchCaches = async (
  send: Send,
  types: ReadonlyArray<SyntheticType>,
  namespace: string,
  concurrency = 16,
): Promise<void> => {
  const deadline = Date.now() + 5 * 60_000
  await pool(types.length, concurrency, async (i) => {
    const type = types[i]!
    for (;;) {
      const res = await send("GET", `${collection(type, namespace)}?resourceVersion=0&limit=1`)
      if (res.status === 200) return
      if (Date.now() > deadline)
        throw new Error(`${type.plural}: no watch cache after 5 minutes (${res.status})`)
      await new Promise((r) => setTimeout(r, 250))
    }
  })
}

/** Deletes the fleet's CRDs (their objects go with them). */
export const deleteFleet = async (send: Send, types: ReadonlyArray<SyntheticType>, concurrency = 8) =>
  pool(types.length, concurrency, async (i) => {
    const t = types[i]!
    const res = await send(
      "DELETE",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${t.plural}.${t.group}`,
    )
    ok(`delete CRD ${t.plural}`, res, [200, 202, 404])
  })
