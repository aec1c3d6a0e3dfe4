/**
 * Load generation for the fault tests: concurrent writes to the real API server, and the checks
 * every fault test shares (convergence with a readable failure, "no older state after a newer one").
 */
import { adminRequest } from "../../kube/harness.js"
import { eventually } from "../controller.js"
import { differences, type ListedType } from "../convergence.js"
import type { ReceivedRequest, Receiver } from "../Receiver.js"

export const configMaps: ListedType = { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" }
export const secrets: ListedType = { group: "", version: "v1", kind: "Secret", plural: "secrets" }
export const serviceAccounts: ListedType = {
  group: "",
  version: "v1",
  kind: "ServiceAccount",
  plural: "serviceaccounts",
}

/** Runs `tasks` with at most `concurrency` in flight; resolves with their results in order. */
export const pool = async <A>(
  concurrency: number,
  tasks: ReadonlyArray<() => Promise<A>>,
): Promise<Array<A>> => {
  const results: Array<A> = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await tasks[index]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker))
  return results
}

const collection = (type: ListedType, ns: string) =>
  `${type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`}/namespaces/${ns}/${type.plural}`

/** Creates an object of a simple type (no spec needed): ConfigMap, Secret, ServiceAccount. */
export const create = async (
  type: ListedType,
  ns: string,
  name: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
): Promise<number> =>
  (await adminRequest("POST", collection(type, ns), { metadata: { name, labels, annotations } })).status

/** Merge-patches labels and annotations (`null` removes a key); answers the HTTP status. */
export const patchMeta = async (
  type: ListedType,
  ns: string,
  name: string,
  labels: Record<string, string | null>,
  annotations: Record<string, string | null> = {},
): Promise<number> =>
  (
    await adminRequest(
      "PATCH",
      `${collection(type, ns)}/${name}`,
      { metadata: { labels, annotations } },
      { contentType: "application/merge-patch+json" },
    )
  ).status

export const remove = async (type: ListedType, ns: string, name: string): Promise<number> =>
  (await adminRequest("DELETE", `${collection(type, ns)}/${name}`)).status

/** Same as `create`, but throws unless the API server answered 201. */
export const mustCreate = async (
  type: ListedType,
  ns: string,
  name: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
): Promise<void> => {
  const status = await create(type, ns, name, labels, annotations)
  if (status !== 201) throw new Error(`create ${type.plural} ${ns}/${name}: HTTP ${status}`)
}

/** Retries a write while the API server is restarting (connection refused, 5xx, 429). */
export const persist = async (what: string, write: () => Promise<number>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await write().catch(() => 0)
    if (status > 0 && status < 500 && status !== 429) return status
    if (Date.now() > deadline) throw new Error(`${what}: no answer within ${timeoutMs} ms (last ${status})`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Waits until the receiver equals the cluster for `types` in every namespace in `namespaces`, and
 * answers how long that took. On timeout the error lists the first differences.
 */
export const converge = async (
  receiver: Receiver,
  types: ReadonlyArray<ListedType>,
  namespaces: ReadonlyArray<string>,
  timeoutMs = 60_000,
): Promise<number> => {
  const started = Date.now()
  const all = async () => (await Promise.all(namespaces.map((ns) => differences(receiver, types, ns)))).flat()
  try {
    await eventually(
      async () => (await all()).length === 0,
      () => "receiver differs from the cluster",
      timeoutMs,
    )
  } catch (error) {
    const left = await all()
    throw new Error(`${error}: ${left.length} differences, e.g. ${left.slice(0, 8).join(", ")}`)
  }
  return Date.now() - started
}

/**
 * Ids whose acknowledged upserts went back in time. Tests label every write with a number that
 * grows per object (`label`), so an older state arriving after a newer one shows as a decrease.
 * A delete between two upserts is fine as long as the number keeps growing.
 */
export const olderAfterNewer = (receiver: Receiver, idPrefix: string, label = "seq"): Array<string> => {
  const out: Array<string> = []
  for (const [id, states] of receiver.history) {
    if (!id.startsWith(idPrefix)) continue
    let highest = -1
    for (const state of states) {
      if (state === null) continue
      const text = state.labels[label]
      if (text === undefined) continue
      const seq = Number(text)
      if (seq < highest) out.push(`${id}: ${label}=${seq} after ${highest}`)
      highest = Math.max(highest, seq)
    }
  }
  return out
}

/**
 * `olderAfterNewer` over the requests the receiver applied (answered 2xx) that `include` keeps, in
 * arrival order: for checks that must leave some requests out, such as ones a fault front delivered
 * after the sender had given up on them.
 */
export const olderAfterNewerIn = (
  receiver: Receiver,
  idPrefix: string,
  include: (request: ReceivedRequest) => boolean,
  label = "seq",
): Array<string> => {
  const highest = new Map<string, number>()
  const out: Array<string> = []
  for (const request of receiver.requests) {
    if (request.answer.kind !== "status" || request.answer.status < 200 || request.answer.status >= 300)
      continue
    if (!include(request)) continue
    for (const record of request.payload.upserts) {
      if (!record.id.startsWith(idPrefix)) continue
      const text = record.labels[label]
      if (text === undefined) continue
      const seq = Number(text)
      const before = highest.get(record.id) ?? -1
      if (seq < before) out.push(`${record.id}: ${label}=${seq} after ${before}`)
      highest.set(record.id, Math.max(before, seq))
    }
  }
  return out
}

/**
 * Background churn for tests that disrupt the API server: `workers` loops, each owning the
 * objects whose index is its own modulo `workers` (so writes to one object are never concurrent and
 * its `seq` label only grows). Failures (API server down) are counted and skipped.
 */
export const backgroundChurn = (
  type: ListedType,
  ns: string,
  names: ReadonlyArray<string>,
  options: { readonly workers?: number; readonly seq?: Map<string, number> } = {},
) => {
  const workers = options.workers ?? 4
  const seq = options.seq ?? new Map<string, number>()
  let running = true
  let paused = false
  let busy = 0
  let writes = 0
  let failures = 0
  const loops = Array.from({ length: workers }, async (_, w) => {
    const own = names.filter((_, i) => i % workers === w)
    for (let k = 0; running && own.length > 0; k++) {
      while (paused && running) await new Promise((r) => setTimeout(r, 20))
      if (!running) break
      busy++
      const name = own[k % own.length]!
      const next = (seq.get(name) ?? 0) + 1
      seq.set(name, next)
      const status = await patchMeta(type, ns, name, { seq: String(next) }).catch(() => 0)
      busy--
      if (status === 200) writes++
      else if (status !== 404) {
        failures++
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  })
  return {
    seq,
    /** Holds the loops between writes; resolves once no write is in flight. */
    pause: async () => {
      paused = true
      while (busy > 0) await new Promise((r) => setTimeout(r, 10))
    },
    resume: () => {
      paused = false
    },
    /** Stops the loops and answers how many writes succeeded and failed. */
    stop: async () => {
      running = false
      await Promise.all(loops)
      return { writes, failures }
    },
  }
}
