/**
 * Operations against the real control plane: resync (periodic and requested), /readyz before and
 * after the initial lists, /metrics.
 */
import { once } from "node:events"
import { createServer } from "node:net"
import { Duration, Option } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
  startApiServer,
  stopApiServer,
} from "../kube/harness.js"
import { eventually, startController } from "../support/controller.js"
import { differences, type ListedType } from "../support/convergence.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const configMaps: ListedType = { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" }

const freePort = async (): Promise<number> => {
  const server = createServer().listen(0, "127.0.0.1")
  await once(server, "listening")
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

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
    await eventually(
      () => (receiver.history.get(id)?.length ?? 0) >= 2,
      () => "not re-sent by the periodic resync",
      20_000,
    )
    for (let i = 0; i < 5; i++)
      expect(receiver.history.get(`${ns}/v1/ConfigMap/cm-${i}`)!.length).toBeGreaterThanOrEqual(2)
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

  it("POST /api/v1/resync twice at once runs one resync and answers both with what it queued", async () => {
    const ns = await populated("resync-api", 3)
    const apiPort = await freePort()
    const healthPort = await freePort()
    const { receiver, controller } = await start(
      {
        apiBindAddress: { host: "127.0.0.1", port: apiPort },
        healthProbeBindAddress: { host: "127.0.0.1", port: healthPort },
      },
      true,
    )
    await eventually(
      () => controller.ready(),
      () => "not ready",
    )
    await converged(receiver, ns)
    const metricsBefore = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text()
    const resyncsBefore = Number(/^vectordb_sync_resyncs_total (\d+)$/m.exec(metricsBefore)?.[1] ?? 0)
    const [a, b] = await Promise.all([
      fetch(`http://127.0.0.1:${apiPort}/api/v1/resync`, { method: "POST" }),
      fetch(`http://127.0.0.1:${apiPort}/api/v1/resync`, { method: "POST" }),
    ])
    expect(a.status).toBe(200)
    expect(b.status).toBe(200)
    const [bodyA, bodyB] = [(await a.json()) as { upserts: number }, await b.json()]
    expect(bodyA).toEqual(bodyB)
    expect(bodyA).toMatchObject({ status: "ok", types: 1, deletes: 0, incomplete: [] })
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
