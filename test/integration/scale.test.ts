/**
 * Crossplane scale, as a process: hundreds of CRDs (a few dozen groups, both scopes), every type
 * watched, one object in each. The controller must become ready, deliver every object, multiplex its
 * watches over a handful of connections to the API server (counted in /proc, not taken from its own
 * metrics) and exit 0 on SIGTERM. How fast and how small it is belongs to `npm run bench`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminRequest, createNamespace, kubeContext } from "../kube/harness.js"
import { establishedConnections } from "../support/connections.js"
import { eventually } from "../support/controller.js"
import { createFleet, deleteFleet, type Send, type SyntheticType } from "../support/crds.js"
import { buildDist, freePort, killAll, spawnController } from "../support/process.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const CRDS = 300
/** client-go's budget: many watches over few connections (issue 10 asks for at most 16). */
const MAX_CONNECTIONS = 16

const send: Send = (method, path, body) => adminRequest(method, path, body, { timeoutMs: 60_000 })

let receiver: Receiver
let types: ReadonlyArray<SyntheticType> = []
let ids: ReadonlyArray<string> = []

beforeAll(async () => {
  buildDist()
  receiver = await startReceiver()
  const namespace = await createNamespace("scale")
  const fleet = await createFleet(send, { prefix: "scale", count: CRDS, withObjects: CRDS, namespace })
  types = fleet.types
  ids = fleet.ids
}, 600_000)

afterAll(async () => {
  await killAll()
  await receiver?.close()
  await deleteFleet(send, types)
}, 300_000)

describe(`${CRDS} CRDs, every type watched`, () => {
  it("becomes ready, delivers every object over few connections, exits 0 on SIGTERM", async () => {
    const healthPort = await freePort()
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: receiver.url,
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
      API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      DEBOUNCE_WINDOW_MS: "500",
      BATCH_FLUSH_INTERVAL_MS: "200",
    })
    const tail = () => spawned.stderr().slice(-3000)
    await eventually(
      async () =>
        (await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.status === 200,
      () => `never ready: ${tail()}`,
      300_000,
    )
    const verbose = (await (await fetch(`http://127.0.0.1:${healthPort}/readyz?verbose`)).json()) as {
      types: ReadonlyArray<{ type: string }>
    }
    const watched = new Set(verbose.types.map((t) => t.type))
    for (const type of types) expect(watched).toContain(`${type.plural}.${type.group}`)

    await eventually(
      () => ids.every((id) => receiver.state.has(id)),
      () =>
        `missing at the receiver: ${ids
          .filter((id) => !receiver.state.has(id))
          .slice(0, 10)
          .join(", ")}`,
      300_000,
    )

    const apiServerPort = Number(new URL(kubeContext().server).port)
    const connections = establishedConnections(spawned.child.pid!, apiServerPort)
    expect(connections).toBeGreaterThan(0)
    expect(connections).toBeLessThanOrEqual(MAX_CONNECTIONS)

    spawned.child.kill("SIGTERM")
    const exit = await spawned.exit
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
  }, 900_000)
})
