/**
 * Discovery against the real kube-apiserver of the harness: built-in types, a CRD served at two
 * versions that comes and goes, an aggregated API that is down, the legacy form, and the
 * unprivileged identity.
 */
import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { afterAll } from "vitest"
import { KubeClient } from "../../src/kube/index.js"
import { discover, discoverWith, makeRevalidating } from "../../src/watch/Discovery.js"
import type { DiscoveryResult, WatchedType } from "../../src/watch/DiscoveryResult.js"
import { adminRequest, expectStatus, kubeContext, waitUntil } from "../kube/harness.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"

const suffix = randomBytes(4).toString("hex")
const group = `discovery-${suffix}.example.com`
const crdName = `gizmos.${group}`
const apiServiceGroup = `metrics-${suffix}.example.com`
const apiServiceName = `v1beta1.${apiServiceGroup}`

const adminLayer = Layer.unwrapEffect(
  Effect.sync(() => KubeClient.layerFromFile(kubeContext().adminKubeconfig)),
)
const userLayer = Layer.unwrapEffect(
  Effect.sync(() => KubeClient.layerFromFile(kubeContext().userKubeconfig)),
)

const revalidatedCrd = `widgets.${group}`

afterAll(async () => {
  await adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`)
  await adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${revalidatedCrd}`)
  await adminRequest("DELETE", `/apis/apiregistration.k8s.io/v1/apiservices/${apiServiceName}`)
})

const version = (name: string, storage: boolean) => ({
  name,
  served: true,
  storage,
  schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
})

/** Creates a CRD of `group` (plural `<singular>s`, kind `Kind`). */
const postCrd = async (
  singular: string,
  kind: string,
  scope: "Namespaced" | "Cluster",
  versions: ReadonlyArray<ReturnType<typeof version>>,
) =>
  expectStatus(
    await adminRequest("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${singular}s.${group}` },
      spec: {
        group,
        scope,
        names: { plural: `${singular}s`, singular, kind, listKind: `${kind}List` },
        versions,
      },
    }),
    201,
  )

const createCrd = Effect.promise(async () => {
  await postCrd("gizmo", "Gizmo", "Namespaced", [version("v1", true), version("v2", false)])
  await waitUntil(`${crdName} to be Established`, async () => {
    const crd = (
      await adminRequest("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`)
    ).json as { status?: { conditions?: ReadonlyArray<{ type: string; status: string }> } }
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false
  })
})

const byKey = (result: DiscoveryResult, key: string): ReadonlyArray<WatchedType> =>
  result.types.filter((t) => t.key === key)

/** Runs `discovery` until `done` holds for its result, for at most 30 s. */
const discoverUntil = (
  what: string,
  done: (result: DiscoveryResult) => boolean,
  discovery: Effect.Effect<DiscoveryResult, unknown, KubeClient> = discover,
) =>
  discovery.pipe(
    Effect.filterOrFail(done, () => new Error(`discovery never showed ${what} within 30 s`)),
    Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.upTo("30 seconds"))),
  )

/** GETs of `/api` and `/apis` the API server has answered 304 Not Modified, from its own /metrics. */
const notModifiedAnswers = Effect.promise(async () => {
  const samples = parsePrometheusText((await adminRequest("GET", "/metrics")).text)
  return ["api", "apis"].reduce(
    (sum, subresource) =>
      sum + sampleValue(samples, "apiserver_request_total", { code: "304", verb: "GET", subresource }),
    0,
  )
})

const typeSet = (result: DiscoveryResult) => result.types.map((t) => `${t.key}@${t.version}:${t.kind}`)

describe("discovery on the real API server", () => {
  it.live("answers aggregated discovery and lists core, cluster-scoped and named-group types", () =>
    Effect.gen(function* () {
      const result = yield* discover
      expect(result.via).toBe("aggregated")
      expect(byKey(result, "configmaps")).toEqual([
        {
          group: "",
          version: "v1",
          kind: "ConfigMap",
          plural: "configmaps",
          namespaced: true,
          key: "configmaps",
        },
      ])
      expect(byKey(result, "namespaces")).toEqual([
        {
          group: "",
          version: "v1",
          kind: "Namespace",
          plural: "namespaces",
          namespaced: false,
          key: "namespaces",
        },
      ])
      expect(byKey(result, "deployments.apps")).toEqual([
        {
          group: "apps",
          version: "v1",
          kind: "Deployment",
          plural: "deployments",
          namespaced: true,
          key: "deployments.apps",
        },
      ])
      expect(byKey(result, "horizontalpodautoscalers.autoscaling").map((t) => t.version)).toEqual(["v2"])
      expect(result.types.some((t) => t.plural.includes("/") || t.plural === "bindings")).toBe(false)
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("lists a CRD served at two versions once, at its preferred version, until it is deleted", () =>
    Effect.gen(function* () {
      yield* createCrd
      // The server's own word on the preferred version: for CRDs the highest by Kubernetes
      // version ordering (v2 over v1), whichever version is the storage version.
      const groupDoc = yield* Effect.promise(() => adminRequest("GET", `/apis/${group}`))
      const preferred = (groupDoc.json as { preferredVersion?: { version?: string } }).preferredVersion
        ?.version
      expect(preferred).toBe("v2")

      const present = yield* discoverUntil(crdName, (r) => byKey(r, crdName).length > 0)
      expect(byKey(present, crdName)).toEqual([
        { group, version: "v2", kind: "Gizmo", plural: "gizmos", namespaced: true, key: crdName },
      ])
      const legacy = yield* discoverUntil(
        crdName,
        (r) => byKey(r, crdName).length > 0,
        discoverWith({ mode: "legacy" }),
      )
      expect(byKey(legacy, crdName)).toEqual(byKey(present, crdName))

      yield* Effect.promise(async () =>
        expectStatus(
          await adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`),
          200,
        ),
      )
      const gone = yield* discoverUntil(`${crdName} gone`, (r) => byKey(r, crdName).length === 0)
      expect(gone.types.some((t) => t.group === group)).toBe(false)
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("the legacy form gives the same types as aggregated discovery", () =>
    Effect.gen(function* () {
      // Another file's CRD may still be going away: compare until both forms agree.
      const both = Effect.all([discover, discoverWith({ mode: "legacy" })])
      const [aggregated, legacy] = yield* both.pipe(
        Effect.filterOrFail(
          ([a, l]) => JSON.stringify(typeSet(a)) === JSON.stringify(typeSet(l)),
          () => new Error("aggregated and legacy discovery differ"),
        ),
        Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo("30 seconds"))),
        Effect.orElse(() => both),
      )
      expect(aggregated.via).toBe("aggregated")
      expect(legacy.via).toBe("legacy")
      expect(typeSet(legacy)).toEqual(typeSet(aggregated))
      expect(legacy.types).toEqual(aggregated.types)
      expect(aggregated.types.length).toBeGreaterThan(40)
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("an aggregated API that is down is a failure of its group-version, not of discovery", () =>
    Effect.gen(function* () {
      yield* Effect.promise(async () =>
        expectStatus(
          await adminRequest("POST", "/apis/apiregistration.k8s.io/v1/apiservices", {
            apiVersion: "apiregistration.k8s.io/v1",
            kind: "APIService",
            metadata: { name: apiServiceName },
            spec: {
              group: apiServiceGroup,
              version: "v1beta1",
              groupPriorityMinimum: 100,
              versionPriority: 100,
              insecureSkipTLSVerify: true,
              service: { namespace: "default", name: `no-such-service-${suffix}`, port: 443 },
            },
          }),
          201,
        ),
      )
      const failed = (r: DiscoveryResult) =>
        r.failures.some((f) => f.groupVersion === `${apiServiceGroup}/v1beta1`)
      const aggregated = yield* discoverUntil(`${apiServiceName} as failed`, failed)
      expect(aggregated.via).toBe("aggregated")
      expect(byKey(aggregated, "configmaps")).toHaveLength(1)
      expect(aggregated.types.some((t) => t.group === apiServiceGroup)).toBe(false)

      const legacy = yield* discoverUntil(
        `${apiServiceName} as failed`,
        failed,
        discoverWith({ mode: "legacy" }),
      )
      const failure = legacy.failures.find((f) => f.groupVersion === `${apiServiceGroup}/v1beta1`)
      expect(failure?.error).toContain("503")
      expect(byKey(legacy, "configmaps")).toHaveLength(1)

      yield* Effect.promise(async () =>
        expectStatus(
          await adminRequest("DELETE", `/apis/apiregistration.k8s.io/v1/apiservices/${apiServiceName}`),
          200,
        ),
      )
      yield* discoverUntil(`${apiServiceName} gone`, (r) => !failed(r))
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("a revalidating discovery reads unchanged documents as 304 and a changed one afresh", () =>
    Effect.gen(function* () {
      const revalidating = yield* makeRevalidating()
      const first = yield* revalidating
      const before = yield* notModifiedAnswers
      const second = yield* revalidating
      // `/api` and `/apis`, each answered 304 Not Modified to the ETag of the first answer.
      expect((yield* notModifiedAnswers) - before).toBeGreaterThanOrEqual(2)
      expect(typeSet(second)).toEqual(typeSet(first))
      expect(typeSet(second)).toEqual(typeSet(yield* discover))

      yield* Effect.promise(() => postCrd("widget", "Widget", "Cluster", [version("v1", true)]))
      const changed = yield* discoverUntil(
        revalidatedCrd,
        (r) => byKey(r, revalidatedCrd).length > 0,
        revalidating,
      )
      expect(byKey(changed, revalidatedCrd).map((t) => t.kind)).toEqual(["Widget"])
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live(
    "an unprivileged user discovers the same types (discovery is open to every authenticated user)",
    () =>
      Effect.gen(function* () {
        const asAdmin = yield* discover.pipe(Effect.provide(adminLayer))
        const asUser = yield* discover.pipe(Effect.provide(userLayer))
        expect(asUser.via).toBe("aggregated")
        expect(typeSet(asUser)).toEqual(typeSet(asAdmin))
      }),
  )
})
