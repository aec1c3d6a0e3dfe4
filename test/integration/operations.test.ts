/**
 * Operations against the real control plane: resync (periodic and requested), /readyz before and
 * after the initial lists, /metrics.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Option, Queue } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import * as Change from "../../src/record/Change.js"
import { ChangeQueue } from "../../src/record/ChangeQueue.js"
import { toInstanceRecord } from "../../src/record/Instance.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
  startApiServer,
  stopApiServer,
} from "../kube/harness.js"
import { eventually, postResync, startController } from "../support/controller.js"
import { differences, type ListedType } from "../support/convergence.js"
import { freePort } from "../support/ports.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const configMaps: ListedType = { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" }

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const start = async (config: Parameters<typeof startController>[0]["config"] = {}, endpoints = false) => {
  const receiver = await startReceiver()
  cleanups.push(() => receiver.close())
  const controller = await startController({
    kubeconfig: kubeContext().adminKubeconfig,
    receiver,
    endpoints,
    config: { watchResourceTypes: ["configmaps"], ...config },
  })
  cleanups.push(() => controller.stop())
  return { receiver, controller }
}

const populated = async (prefix: string, count: number) => {
  const ns = await createNamespace(prefix)
  cleanups.push(() => deleteNamespace(ns))
  for (let i = 0; i < count; i++) {
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: `cm-${i}` } }),
      201,
    )
  }
  return ns
}

const converged = (receiver: Receiver, ns: string) =>
  eventually(
    async () => (await differences(receiver, [configMaps], ns)).length === 0,
    () => `receiver not converged on ${ns}`,
  )

describe("resync", () => {
  it("periodic resync re-sends every object, even unchanged ones", async () => {
    const ns = await populated("resync-periodic", 5)
    const { receiver, controller } = await start({ resyncInterval: Option.some(Duration.seconds(3)) })
    await eventually(
      () => controller.ready(),
      () => "not ready",
    )
    await converged(receiver, ns)
    const id = `${ns}/v1/ConfigMap/cm-0`
    expect(receiver.history.get(id)?.length).toBe(1)
    // Every ConfigMap of the cluster is re-sent, in batches: wait for all five of this test's.
    await eventually(
      () =>
        Array.from({ length: 5 }, (_, i) => receiver.history.get(`${ns}/v1/ConfigMap/cm-${i}`)).every(
          (sent) => (sent?.length ?? 0) >= 2,
        ),
      () => "not re-sent by the periodic resync",
      20_000,
    )
  })

  it("a requested resync restores a receiver that lost its data", async () => {
    const ns = await populated("resync-requested", 8)
    const { receiver, controller } = await start({ resyncInterval: Option.none() })
    await eventually(
      () => controller.ready(),
      () => "not ready",
    )
    await converged(receiver, ns)
    // The receiver loses its index (a restore from an old backup, say): nothing in the watch
    // stream will ever tell the controller.
    const lost = [...receiver.state.keys()].filter((id) => id.startsWith(`${ns}/`))
    for (const id of lost) (receiver.state as Map<string, unknown>).delete(id)
    const outcome = await controller.resync()
    expect(outcome.types).toBe(1)
    expect(outcome.upserts).toBeGreaterThanOrEqual(8)
    expect(outcome.incomplete).toEqual([])
    await converged(receiver, ns)
  })

  it("resync deletes a stale id the receiver holds from this controller but no object backs", async () => {
    const ns = await populated("resync-stale", 2)
    const { receiver, controller } = await start({ resyncInterval: Option.none() })
    await eventually(
      () => controller.ready(),
      () => "not ready",
    )
    await converged(receiver, ns)
    // Seed the receiver with a stale id through the controller's own pipeline, as a delete lost
    // on the way (or a type no longer watched) would leave it.
    const ghost = toInstanceRecord(
      { group: "", version: "v1", kind: "ConfigMap" },
      { name: "ghost", namespace: ns, creationTimestamp: "2026-01-01T00:00:00Z" },
    )!
    await controller.runtime.runPromise(
      Effect.flatMap(ChangeQueue, (queue) => Queue.offer(queue, [Change.upsert(ghost)])),
    )
    await eventually(
      () => receiver.state.has(ghost.id),
      () => "ghost not seeded",
    )
    const outcome = await controller.resync()
    // At least the ghost; ConfigMaps of namespaces other tests are deleting may vanish meanwhile.
    expect(outcome.deletes).toBeGreaterThanOrEqual(1)
    await eventually(
      () => !receiver.state.has(ghost.id),
      () => "stale id not deleted by the resync",
    )
    await converged(receiver, ns)
  })

  it("POST /api/v1/resync twice at once runs one resync and answers both with what it queued", async () => {
    const ns = await populated("resync-api", 3)
    const apiPort = await freePort()
    const healthPort = await freePort()
    // Every type of the cluster, so that a resync takes long enough for the two requests to meet.
    const tokenDir = await mkdtemp(join(tmpdir(), "resync-token-"))
    cleanups.push(() => rm(tokenDir, { recursive: true }))
    const tokenFile = join(tokenDir, "token")
    await writeFile(tokenFile, "resync-secret")
    const { receiver, controller } = await start(
      {
        watchResourceTypes: [],
        apiBindAddress: { host: "127.0.0.1", port: apiPort },
        healthProbeBindAddress: { host: "127.0.0.1", port: healthPort },
        resyncAuth: { mode: "token", tokenFile },
      },
      true,
    )
    await eventually(
      () => controller.ready(),
      () => "not ready",
      60_000,
    )
    await eventually(
      () => [0, 1, 2].every((i) => receiver.state.has(`${ns}/v1/ConfigMap/cm-${i}`)),
      () => "not synced",
    )
    // Every type is relisted: a namespace another test is still deleting would make objects vanish
    // under the resync, which then rightly queues deletes. Wait for a quiet cluster first.
    await eventually(
      async () =>
        !(
          (await adminRequest("GET", "/api/v1/namespaces")).json as {
            items: Array<{ status?: { phase?: string } }>
          }
        ).items.some((n) => n.status?.phase === "Terminating"),
      () => "a namespace is still terminating",
      120_000,
    )
    const metricsBefore = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text()
    const resyncsBefore = Number(/^vectordb_sync_resyncs_total (\d+)$/m.exec(metricsBefore)?.[1] ?? 0)
    const authorization = "Bearer resync-secret"
    const [a, b] = await Promise.all([postResync(apiPort, authorization), postResync(apiPort, authorization)])
    expect(a.status).toBe(200)
    expect(b.status).toBe(200)
    const [bodyA, bodyB] = [(await a.json()) as { upserts: number }, await b.json()]
    expect(bodyA).toEqual(bodyB)
    expect(bodyA).toMatchObject({ status: "ok", deletes: 0, incomplete: [] })
    expect((bodyA as unknown as { types: number }).types).toBeGreaterThan(10)
    expect(bodyA.upserts).toBeGreaterThanOrEqual(3)
    const metricsAfter = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text()
    const resyncsAfter = Number(/^vectordb_sync_resyncs_total (\d+)$/m.exec(metricsAfter)?.[1] ?? 0)
    expect(resyncsAfter - resyncsBefore).toBe(1)
  })
})

describe("/readyz", () => {
  it("is 503 until the initial list of every watched type has completed, then 200", async () => {
    const healthPort = await freePort()
    await stopApiServer()
    try {
      const { controller } = await start(
        {
          healthProbeBindAddress: { host: "127.0.0.1", port: healthPort },
          apiBindAddress: { host: "127.0.0.1", port: await freePort() },
        },
        true,
      )
      const readyz = () => fetch(`http://127.0.0.1:${healthPort}/readyz`).then((r) => r.status)
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status === 200,
        () => "no healthz",
      )
      expect(await readyz()).toBe(503)
      expect(await controller.ready()).toBe(false)
      await startApiServer()
      await eventually(
        async () => (await readyz()) === 200,
        () => "never ready after the API server came back",
        60_000,
      )
    } finally {
      await startApiServer()
    }
  })
})

describe("capabilities", () => {
  it("CRD additions and removals reach the capabilities receiver; an update that serves the same kinds sends nothing", async () => {
    const capabilities = await startReceiver({ path: "/api/v1/capabilities/sync" })
    cleanups.push(() => capabilities.close())
    const { controller } = await start(
      {
        capabilitiesEndpoint: Option.some(new URL(capabilities.url)),
        apiBindAddress: { host: "127.0.0.1", port: await freePort() },
        healthProbeBindAddress: { host: "127.0.0.1", port: await freePort() },
      },
      true,
    )
    await eventually(
      () => controller.ready(),
      () => "not ready",
    )
    const group = `caps${Date.now()}.example.com`
    const name = `gadgets.${group}`
    const crd = (served: ReadonlyArray<string>, plural = "gadgets", kind = "Gadget") => ({
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
        versions: ["v1", "v2"].map((version) => ({
          name: version,
          served: served.includes(version),
          storage: version === "v1",
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        })),
      },
    })
    expectStatus(
      await adminRequest("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(["v1"])),
      201,
    )
    await eventually(
      () => capabilities.state.has(name),
      () => `no capability upsert for ${name}`,
    )
    const mentions = () =>
      capabilities.requests.filter((r) => (r.payload.upserts as unknown as string[]).includes(name)).length
    expect(mentions()).toBe(1)

    // A label on the CRD changes nothing it serves.
    expectStatus(
      await adminRequest(
        "PATCH",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
        { metadata: { labels: { team: "a" } } },
        { contentType: "application/merge-patch+json" },
      ),
      200,
    )
    // A marker CRD created after the label change comes through the same CRD watch after it; had
    // the label change made an upsert, it would have been sent no later than the marker's.
    const marker = `markers.${group}`
    expectStatus(
      await adminRequest(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd(["v1"], "markers", "Marker"),
      ),
      201,
    )
    cleanups.push(() =>
      adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${marker}`),
    )
    await eventually(
      () => capabilities.state.has(marker),
      () => `no capability upsert for the marker ${marker}`,
    )
    expect(mentions()).toBe(1)

    // Serving another version does.
    expectStatus(
      await adminRequest(
        "PATCH",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
        { spec: crd(["v1", "v2"]).spec },
        { contentType: "application/merge-patch+json" },
      ),
      200,
    )
    await eventually(
      () => mentions() === 2,
      () => `served versions change not sent (${mentions()})`,
    )

    expectStatus(
      await adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`),
      200,
    )
    await eventually(
      () => !capabilities.state.has(name),
      () => `no capability delete for ${name}`,
    )
    const deleting = capabilities.requests.find((r) => r.payload.deletes.includes(name))!
    expect(deleting.payload).toEqual({ upserts: [], deletes: [name] })
  })
})
