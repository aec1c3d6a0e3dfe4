/**
 * Faults of the API server while the cluster keeps changing: kube-apiserver stopped and started
 * again in the middle of concurrent churn (with deletes before it goes, behind its back while it is
 * down, and right after it returns), and resourceVersions expired (410 Gone) during churn. The
 * watcher test does the quiet versions of these; here the writes never pause.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createNamespace,
  deleteNamespace,
  expireResourceVersions,
  kubeContext,
  startApiServer,
  stopApiServer,
} from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import {
  backgroundChurn,
  configMaps,
  converge,
  mustCreate,
  olderAfterNewer,
  persist,
  pool,
  remove,
} from "../../support/faults/churn.js"
import { type FaultController, startFaultController } from "../../support/faults/controller.js"
import { type Receiver, startReceiver } from "../../support/Receiver.js"

let receiver: Receiver
let controller: FaultController

beforeAll(async () => {
  receiver = await startReceiver()
  controller = await startFaultController({
    kubeconfig: kubeContext().adminKubeconfig,
    url: receiver.url,
    config: { watchResourceTypes: ["configmaps"], batchMaxSize: 50 },
  })
  await eventually(
    () => controller.ready(),
    () => "controller never became ready",
  )
})

afterAll(async () => {
  await controller?.stop()
  await receiver?.close()
})

const populate = async (prefix: string, count: number) => {
  const ns = await createNamespace(prefix)
  const names = Array.from({ length: count }, (_, i) => `cm-${i}`)
  await pool(
    8,
    names.map((name) => () => mustCreate(configMaps, ns, name, { seq: "0" })),
  )
  await converge(receiver, [configMaps], [ns])
  return { ns, names }
}

/** Deletes through etcd, as if done by another API server: this one learns of it only later. */
const deleteInEtcd = async (ns: string, name: string) => {
  const key = Buffer.from(`/registry/configmaps/${ns}/${name}`).toString("base64")
  const response = await fetch(`${kubeContext().etcdUrl}/v3/kv/deleterange`, {
    method: "POST",
    body: JSON.stringify({ key }),
  })
  const body = (await response.json()) as { deleted?: string }
  if (body.deleted !== "1") throw new Error(`etcd delete of ${ns}/${name}: ${JSON.stringify(body)}`)
}

/** Watch restarts by reason, from /metrics (the controller watches configmaps only). */
const restarts = (reason: "expired" | "error" | "closed" | "idle") =>
  controller.metric("vectordb_sync_watch_restarts_total", { reason })

describe("API server faults during churn", () => {
  it("kube-apiserver stopped and started during concurrent churn, deletes before, behind its back and right after: converges", async () => {
    const { names, ns } = await populate("fault-restart", 60)
    const errorsBefore = await restarts("error")
    // Objects 0..47 churn; 48..59 are the ones deleted around the outage.
    const churn = backgroundChurn(configMaps, ns, names.slice(0, 48))
    await new Promise((r) => setTimeout(r, 1_000))

    // Before: deleted while the API server is still up (the watch may or may not deliver it in time).
    await Promise.all(names.slice(48, 52).map((name) => remove(configMaps, ns, name)))
    await stopApiServer()
    const downAt = Date.now()
    // While it is down: deleted in etcd directly; only a relist or a resumed watch can tell.
    for (const name of names.slice(52, 56)) await deleteInEtcd(ns, name)
    await new Promise((r) => setTimeout(r, 1_000))
    await startApiServer()
    const downMs = Date.now() - downAt
    // Right after it comes back: deletes and creates, racing the controller's reconnection.
    await Promise.all([
      ...names.slice(56, 60).map((name) => persist(`delete ${name}`, () => remove(configMaps, ns, name))),
      ...[0, 1, 2, 3].map((i) =>
        persist(`create new-${i}`, async () => {
          await mustCreate(configMaps, ns, `new-${i}`, { seq: "0" })
          return 201
        }),
      ),
    ])
    await new Promise((r) => setTimeout(r, 1_500))
    const { failures, writes } = await churn.stop()
    const stoppedAt = Date.now()
    const convergedMs = await converge(receiver, [configMaps], [ns], 90_000)
    console.log(
      `apiserver stop/start during churn: down ${downMs} ms, ${writes} writes (${failures} failed while down), ` +
        `converged ${convergedMs} ms after the churn stopped (${Date.now() - stoppedAt} ms)`,
    )
    expect(writes).toBeGreaterThan(50)
    for (const name of names.slice(48, 60))
      expect(receiver.state.has(`${ns}/v1/ConfigMap/${name}`)).toBe(false)
    for (const i of [0, 1, 2, 3]) expect(receiver.state.has(`${ns}/v1/ConfigMap/new-${i}`)).toBe(true)
    expect(olderAfterNewer(receiver, `${ns}/`)).toEqual([])
    // The watch failed and was made again, and /metrics says so.
    expect(await restarts("error")).toBeGreaterThan(errorsBefore)
    await deleteNamespace(ns)
  })

  it("410 Gone forced on the watches during concurrent churn, with deletes around it: relists and converges", async () => {
    const { names, ns } = await populate("fault-gone", 60)
    const expiredBefore = await restarts("expired")
    const churn = backgroundChurn(configMaps, ns, names.slice(0, 48))
    await new Promise((r) => setTimeout(r, 1_000))
    await Promise.all(names.slice(48, 54).map((name) => remove(configMaps, ns, name)))
    // Writes stop for the expiry itself: a configmap written between etcd's compaction and the
    // API server's stop would hand the watch a version newer than the compaction, and its resume
    // would then be valid (no 410). Churn resumes as soon as the API server is back, racing the relist.
    await churn.pause()
    await new Promise((r) => setTimeout(r, 300))
    await expireResourceVersions()
    churn.resume()
    await Promise.all([
      ...names.slice(54, 60).map((name) => persist(`delete ${name}`, () => remove(configMaps, ns, name))),
      persist("create new-0", async () => {
        await mustCreate(configMaps, ns, "new-0", { seq: "0" })
        return 201
      }),
    ])
    await new Promise((r) => setTimeout(r, 1_500))
    const { failures, writes } = await churn.stop()
    const convergedMs = await converge(receiver, [configMaps], [ns], 90_000)
    console.log(
      `410 during churn: ${writes} writes (${failures} failed), converged ${convergedMs} ms after the churn stopped`,
    )
    expect(writes).toBeGreaterThan(50)
    // A relist happened (the resumed watch got 410 Gone), not only a resume.
    expect(await restarts("expired")).toBeGreaterThan(expiredBefore)
    for (const name of names.slice(48, 60))
      expect(receiver.state.has(`${ns}/v1/ConfigMap/${name}`)).toBe(false)
    expect(receiver.state.has(`${ns}/v1/ConfigMap/new-0`)).toBe(true)
    expect(olderAfterNewer(receiver, `${ns}/`)).toEqual([])
    await deleteNamespace(ns)
  })
})
