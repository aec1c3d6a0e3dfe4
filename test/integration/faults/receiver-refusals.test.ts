/**
 * Fault: a receiver that refuses requests, against the real control plane and the real HTTP sender.
 * - A 5 MiB body limit (cluster-whisperer's), answered with 413: big objects listed at once, by a
 *   first start and again by a restart, must all arrive without a single 413.
 * - A delete refused for good (400): set aside, then deleted by the next resync.
 */
import { Duration, Effect, Metric, Option } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { defaultValue, Variables } from "../../../src/config/Variables.js"
import * as Metrics from "../../../src/metrics/Metrics.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
} from "../../kube/harness.js"
import { eventually, type RunningController, startController } from "../../support/controller.js"
import { type Receiver, startReceiver } from "../../support/Receiver.js"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const start = async (receiver: Receiver, config: Parameters<typeof startController>[0]["config"] = {}) => {
  const controller = await startController({
    kubeconfig: kubeContext().adminKubeconfig,
    receiver,
    config: { watchResourceTypes: ["configmaps"], ...config },
  })
  cleanups.push(() => controller.stop())
  await eventually(
    () => controller.ready(),
    () => "controller never became ready",
  )
  return controller
}

const namespace = async (prefix: string) => {
  const ns = await createNamespace(prefix)
  cleanups.push(() => deleteNamespace(ns))
  return ns
}

const createConfigMap = async (ns: string, name: string, annotations: Record<string, string> = {}) =>
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name, annotations } }),
    201,
  )

const idOf = (ns: string, name: string) => `${ns}/v1/ConfigMap/${name}`

const statusOf = (request: Receiver["requests"][number]) =>
  request.answer.kind === "status" ? request.answer.status : request.answer.kind

describe("a receiver that refuses requests", () => {
  it("5 MiB body limit: 60 objects with 200 KiB annotations, synced and then restarted, arrive without a 413", async () => {
    const limit = 5 * 1024 * 1024
    const receiver = await startReceiver({ maxBodyBytes: limit })
    cleanups.push(() => receiver.close())
    const ns = await namespace("body-limit")
    const names = Array.from({ length: 60 }, (_, i) => `big-${i}`)
    const blob = "x".repeat(200 * 1024)
    for (const name of names) await createConfigMap(ns, name, { "example.com/blob": blob })

    // Both starts list all 60 at once: 12 MiB of upserts ripe together, waiting for company long
    // enough that 50 (the count cap) would share a request without the byte cap.
    const config = { debounceWindow: Duration.seconds(1), batchFlushInterval: Duration.seconds(5) }
    const sentTimes = (count: number) =>
      eventually(
        () => names.every((name) => (receiver.history.get(idOf(ns, name))?.length ?? 0) >= count),
        () => `not every object arrived ${count} time(s)`,
        60_000,
      )
    let controller: RunningController = await start(receiver, config)
    await sentTimes(1)
    await controller.stop()
    controller = await start(receiver, config)
    await sentTimes(2)

    expect(receiver.requests.filter((r) => statusOf(r) === 413).map((r) => r.bytes)).toEqual([])
    const cap = defaultValue(Variables.BATCH_MAX_BYTES)
    expect(Math.max(...receiver.requests.map((r) => r.bytes))).toBeLessThanOrEqual(cap)
    // Each start needed several requests for them: the cap, not the count, cut the batches.
    const carrying = receiver.requests.filter((r) => r.payload.upserts.some((u) => u.namespace === ns))
    expect(carrying.length).toBeGreaterThanOrEqual(2 * Math.ceil((60 * blob.length) / cap))
    for (const name of names) {
      expect(receiver.state.get(idOf(ns, name))?.annotations["example.com/blob"]).toBe(blob)
    }
  })

  it("a delete refused for good (400) is set aside, then deleted by the next resync", async () => {
    const receiver = await startReceiver()
    cleanups.push(() => receiver.close())
    const ns = await namespace("refused-delete")
    await createConfigMap(ns, "doomed")
    await createConfigMap(ns, "kept")
    const doomed = idOf(ns, "doomed")
    const controller = await start(receiver, { resyncInterval: Option.none() })
    await eventually(
      () => receiver.state.has(doomed) && receiver.state.has(idOf(ns, "kept")),
      () => "objects not synced",
    )

    // Refused until the controller has set it aside: a request that carries it with others is
    // split, so refusing only the first would let a half deliver it.
    let refusing = true
    receiver.script = (payload) =>
      refusing && payload.deletes.includes(doomed)
        ? { kind: "status", status: 400, body: "cannot delete that now" }
        : undefined
    const rejected = () =>
      Effect.runPromise(
        Effect.map(
          Metric.value(Metric.tagged(Metrics.rejectedEntries, "pipeline", "instances")),
          (state) => state.count,
        ),
      )
    const rejectedBefore = await rejected()
    expectStatus(await adminRequest("DELETE", `/api/v1/namespaces/${ns}/configmaps/doomed`), 200)
    // Set aside once refused alone: the refusal is counted after the batch was split down to it.
    await eventually(
      async () => (await rejected()) > rejectedBefore,
      () => "the delete was never refused",
    )
    expect(receiver.state.has(doomed)).toBe(true)
    // Alone: other tests' changes in the cluster may share a batch with it before the split.
    const alone = receiver.requests.filter(
      (r) =>
        r.payload.upserts.length === 0 && r.payload.deletes.length === 1 && r.payload.deletes[0] === doomed,
    )
    expect(alone.map(statusOf)).toEqual([400])
    refusing = false

    const outcome = await controller.resync()
    expect(outcome.deletes).toBeGreaterThanOrEqual(1)
    await eventually(
      () => !receiver.state.has(doomed),
      () => "the refused delete was not retried by the resync",
    )
    expect(receiver.state.has(idOf(ns, "kept"))).toBe(true)
  })
})
