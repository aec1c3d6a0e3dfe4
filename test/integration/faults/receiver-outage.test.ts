/**
 * Fault: the receiver answers 503, then goes away entirely (connection refused) while 2,000 changes
 * over 300 objects happen, then comes back. The index must end equal to the cluster, no older state
 * may follow a newer one, retries must back off rather than spin, and the pending state must stay
 * bounded by the number of objects, not the number of events. What the controller did is read from
 * its /metrics and checked against what the receiver saw.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminRequest, createNamespace, deleteNamespace, kubeContext } from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import { differences } from "../../support/convergence.js"
import {
  configMaps,
  converge,
  mustCreate,
  olderAfterNewer,
  patchMeta,
  pool,
  remove,
} from "../../support/faults/churn.js"
import { type FaultController, startFaultController } from "../../support/faults/controller.js"
import { type Receiver, startReceiver } from "../../support/Receiver.js"

const OBJECTS = 300
const CHANGES = 2_000

let receiver: Receiver
let controller: FaultController

beforeAll(async () => {
  receiver = await startReceiver()
  controller = await startFaultController({
    kubeconfig: kubeContext().adminKubeconfig,
    url: receiver.url,
    sendTimeoutMs: 2_000,
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

describe("receiver outage", () => {
  it("503 then connection refused during 2,000 changes over 300 objects: converges once it is back, nothing older after newer", async () => {
    const ns = await createNamespace("fault-outage")
    await converge(receiver, [configMaps], [ns])
    const name = (i: number) => `cm-${i}`
    const seq = new Array<number>(OBJECTS).fill(0)
    let changes = 0

    // The controller watches every namespace: other configmaps (e.g. of namespaces other test files
    // are still deleting) may change during the outage too and count as pending entries.
    const everywhere = (await adminRequest("GET", "/api/v1/configmaps")).json as { items: Array<unknown> }
    const others = everywhere.items.length

    const labels = { pipeline: "instances" }
    const counters = async () => ({
      unavailable: await controller.metric("vectordb_sync_requests_total", {
        ...labels,
        outcome: "unavailable",
      }),
      success: await controller.metric("vectordb_sync_requests_total", { ...labels, outcome: "success" }),
      retries: await controller.metric("vectordb_sync_retries_total", labels),
      upserts: await controller.metric("vectordb_sync_upserts_sent_total", labels),
      deletes: await controller.metric("vectordb_sync_deletes_sent_total", labels),
    })
    // The controller watches the whole cluster, where other tests make changes too: take the
    // receiver's count and the controller's counters at a quiet moment, so that no request is
    // answered between the two snapshots and the 503s that follow.
    let requestsBefore: number
    let before: Awaited<ReturnType<typeof counters>>
    do {
      requestsBefore = receiver.requests.length
      await new Promise((resolve) => setTimeout(resolve, 300))
      before = await counters()
    } while (receiver.requests.length !== requestsBefore)

    // Phase 1: the receiver answers 503 to everything.
    const outageStarted = Date.now()
    receiver.script = () => ({ kind: "status", status: 503, body: "maintenance" })
    await pool(
      16,
      Array.from({ length: OBJECTS }, (_, i) => async () => {
        await mustCreate(configMaps, ns, name(i), { seq: "0" })
        changes++
      }),
    )

    // Phase 2: the rest of the changes; half way through, the receiver goes away entirely.
    let stopped: Promise<void> | undefined
    let phase1Requests = 0
    let phase1Ms = 0
    const deletedAtEnd = new Set<number>()
    const perObject = (CHANGES - OBJECTS) / OBJECTS // 5.67: some objects get one more change
    let budget = CHANGES - OBJECTS
    const chains = Array.from({ length: OBJECTS }, (_, i) => {
      const count = Math.min(budget, Math.ceil(perObject * (i + 1)) - Math.ceil(perObject * i))
      budget -= count
      return async () => {
        let exists = true
        for (let k = 0; k < count; k++) {
          const last = k === count - 1
          // Every tenth object is deleted mid-way and re-created; every fifteenth stays deleted.
          if (exists && ((i % 10 === 3 && k === 1) || (i % 15 === 7 && last))) {
            if ((await remove(configMaps, ns, name(i))) !== 200) throw new Error(`delete ${name(i)}`)
            exists = false
            if (last) deletedAtEnd.add(i)
          } else {
            seq[i]! += 1
            if (exists) {
              const status = await patchMeta(configMaps, ns, name(i), { seq: String(seq[i]) })
              if (status !== 200) throw new Error(`patch ${name(i)}: ${status}`)
            } else {
              await mustCreate(configMaps, ns, name(i), { seq: String(seq[i]), reborn: "yes" })
              exists = true
            }
          }
          changes++
          if (stopped === undefined && changes >= OBJECTS + (CHANGES - OBJECTS) / 2) {
            phase1Requests = receiver.requests.length - requestsBefore
            phase1Ms = Date.now() - outageStarted
            stopped = receiver.stop()
          }
        }
      }
    })
    await pool(16, chains)
    await stopped
    expect(changes).toBe(CHANGES)
    // The controller has seen everything; while the receiver is away its pending state (the
    // /metrics gauge) is one entry per id, however many events there were.
    const pendingGauge = () => controller.metric("vectordb_sync_pending_entries", labels)
    await eventually(
      async () => (await pendingGauge()) >= OBJECTS - deletedAtEnd.size,
      () => "changes not pending",
    )
    const pendingDuringOutage = await pendingGauge()
    expect(pendingDuringOutage).toBeLessThanOrEqual(OBJECTS + others + 10)
    // It keeps retrying against the refused connection: more failures are counted.
    const refusedFrom = (await counters()).unavailable
    await eventually(
      async () => (await counters()).unavailable >= refusedFrom + 2,
      () => "no retries counted while the receiver was away",
    )
    const during = await counters()
    const outageMs = Date.now() - outageStarted
    // Not one request succeeded while the receiver was failing, and every failure was retried.
    expect(during.success - before.success).toBe(0)
    expect(during.upserts - before.upserts).toBe(0)
    expect(during.unavailable - before.unavailable).toBeGreaterThanOrEqual(phase1Requests + 2)
    expect(during.retries - before.retries).toBeGreaterThanOrEqual(phase1Requests + 1)

    // The receiver comes back and answers 200 again.
    receiver.script = () => undefined
    await receiver.start()
    const convergedMs = await converge(receiver, [configMaps], [ns], 60_000)
    const afterReturn = receiver.requests.length - requestsBefore - phase1Requests
    console.log(
      `receiver outage: ${CHANGES} changes over ${OBJECTS} objects in ${outageMs} ms of outage ` +
        `(503 for ${phase1Ms} ms: ${phase1Requests} requests); pending during outage ${pendingDuringOutage} ` +
        `(${others} other configmaps in the cluster); ` +
        `converged ${convergedMs} ms after the receiver came back, with ${afterReturn} requests`,
    )

    expect(olderAfterNewer(receiver, `${ns}/`)).toEqual([])
    // Backoff, not a busy loop. Each delay is min(100 ms x 2^n, 1 s), jittered by at most -20%: the
    // first five attempts take at least 80+160+320+640 ms, then at least 800 ms each.
    const answered503 = receiver.requests
      .slice(requestsBefore)
      .filter((r) => r.answer.kind === "status" && r.answer.status === 503).length
    expect(answered503).toBe(phase1Requests)
    expect(phase1Requests).toBeGreaterThan(0)
    expect(phase1Requests).toBeLessThanOrEqual(6 + Math.max(0, phase1Ms - 1_200) / 800)
    for (const i of deletedAtEnd) expect(receiver.state.has(`${ns}/v1/ConfigMap/${name(i)}`)).toBe(false)
    // Re-created objects arrive with their new state.
    const reborn = [...receiver.state.values()].filter((r) => r.namespace === ns && r.labels.reborn === "yes")
    expect(reborn.length).toBeGreaterThan(0)
    await eventually(
      async () => (await controller.pending()) === 0 && (await pendingGauge()) === 0,
      () => "entries still pending after convergence",
    )
    expect(await differences(receiver, [configMaps], ns)).toEqual([])
    // /metrics agrees with the receiver: every failure retried, every success and entry counted.
    const after = await counters()
    const acknowledged = receiver.requests
      .slice(requestsBefore)
      .filter((r) => r.answer.kind === "status" && r.answer.status === 200)
    expect(after.retries - before.retries).toBe(after.unavailable - before.unavailable)
    expect(after.success - before.success).toBe(acknowledged.length)
    expect(after.upserts - before.upserts).toBe(
      acknowledged.reduce((n, r) => n + r.payload.upserts.length, 0),
    )
    expect(after.deletes - before.deletes).toBe(
      acknowledged.reduce((n, r) => n + r.payload.deletes.length, 0),
    )
    await deleteNamespace(ns)
  })
})
