/**
 * Seeded randomized convergence: random creates, label and annotation updates and deletes across
 * three types and three namespaces, while the receiver (and a front before it) fails at random:
 * 503, 429 with Retry-After, connection dropped, garbage, no answer (past the send timeout), slow
 * answers (within it), answers lost after the payload was applied, and payloads applied late, after
 * the sender timed out (the stale-overwrite case of the README's "Failure behaviour").
 *
 * Once the cluster is quiet, the receiver must equal the cluster except for ids a late payload
 * touched, with no older state of an object after a newer one among the requests the sender saw
 * through; a resync then repairs every late overwrite but upserts of objects deleted since.
 *
 * Seeds: `FAULT_SEED=<n>[,<m>...]` runs those; with `CI=true` the fixed `CI_SEEDS`; otherwise one
 * fresh seed. Each is printed; a seed replays the same operations and the same fault for the n-th
 * request (the interleaving of requests with operations still depends on timing).
 */
import { Duration } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createNamespace, deleteNamespace, kubeContext } from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import { differences } from "../../support/convergence.js"
import {
  configMaps,
  converge,
  create,
  mustCreate,
  olderAfterNewer,
  olderAfterNewerIn,
  patchMeta,
  pool,
  remove,
  secrets,
  serviceAccounts,
} from "../../support/faults/churn.js"
import { type FaultController, startFaultController } from "../../support/faults/controller.js"
import { type FaultyFront, startFaultyFront } from "../../support/faults/FaultyFront.js"
import { mulberry32, seedsFromEnv } from "../../support/faults/random.js"
import { CONTRACT_DROPPED_ANNOTATION_PREFIXES } from "../../support/oracle.js"
import { type ReceivedRequest, type Receiver, startReceiver } from "../../support/Receiver.js"

const OPERATIONS = 600
const NAMES_PER_TYPE = 12
const SEND_TIMEOUT_MS = 1_000
const types = [configMaps, secrets, serviceAccounts]
const seeds = seedsFromEnv()

let receiver: Receiver
let front: FaultyFront
let controller: FaultController
const namespaces: Array<string> = []

/** A request the front held past the sender's timeout and then delivered (see FaultyFront). */
const isLate = (request: ReceivedRequest) => request.headers["x-fault-late"] === "1"
const applied = (request: ReceivedRequest) =>
  request.answer.kind === "status" && request.answer.status >= 200 && request.answer.status < 300
/** The id a line of `differences` is about (`missing <id>`, `extra <id>`, `stale <id> (...)`). */
const idOf = (difference: string) => difference.split(" ")[1]!

beforeAll(async () => {
  console.log(`randomized convergence: FAULT_SEED=${seeds.join(",")}`)
  receiver = await startReceiver()
  front = await startFaultyFront(receiver.url)
  controller = await startFaultController({
    kubeconfig: kubeContext().adminKubeconfig,
    url: front.url,
    sendTimeoutMs: SEND_TIMEOUT_MS,
    // Short windows and small batches: many requests, so many faults and many states per object.
    config: {
      watchResourceTypes: ["configmaps", "secrets", "serviceaccounts"],
      batchMaxSize: 10,
      debounceWindow: Duration.millis(50),
      batchFlushInterval: Duration.millis(20),
      retryInitialBackoff: Duration.millis(50),
      retryMaxBackoff: Duration.millis(400),
    },
  })
  await eventually(
    () => controller.ready(),
    () => "controller never became ready",
  )
})

afterAll(async () => {
  await controller?.stop()
  await front?.close()
  await receiver?.close()
  // Gone before the next file starts: a namespace still terminating would show up in its lists.
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns, { wait: true, timeoutMs: 120_000 })))
})

describe("seeded randomized convergence", () => {
  it.each(seeds)(
    "FAULT_SEED=%i: random creates, updates and deletes over 3 types x 3 namespaces with random receiver faults: converges",
    async (seed) => {
      const mine = await Promise.all([0, 1, 2].map((i) => createNamespace(`fault-random-${i}`)))
      namespaces.push(...mine)
      const requestsBefore = receiver.requests.length
      const actionsBefore = front.actions.length
      const ops = mulberry32(seed)
      const faults = mulberry32(seed ^ 0x9e3779b9)
      const delays = mulberry32(seed ^ 0x85ebca6b)
      const faultCounts = new Map<string, number>()
      const count = (fault: string) => faultCounts.set(fault, (faultCounts.get(fault) ?? 0) + 1)
      const counted = <A>(fault: string, answer: A): A => {
        count(fault)
        return answer
      }
      receiver.script = () => {
        const r = faults.next()
        if (r < 0.12) return counted("503", { kind: "status", status: 503, body: "busy" })
        if (r < 0.15) return counted("429", { kind: "status", status: 429, retryAfter: "1" })
        if (r < 0.2) return counted("destroy", { kind: "destroy" })
        if (r < 0.25) return counted("garbage", { kind: "garbage" })
        if (r < 0.28) return counted("hang", { kind: "hang" })
        return undefined
      }
      front.decide = () => {
        const r = delays.next()
        if (r < 0.08)
          return counted("slow", { kind: "forward", delayMs: 50 + Math.floor(delays.next() * 350) })
        // Delivered after the sender gave up: the receiver may apply an older state after a newer one.
        if (r < 0.16) {
          const delayMs = SEND_TIMEOUT_MS + 200 + Math.floor(delays.next() * 1_500)
          return counted("late", { kind: "forward", delayMs, late: true })
        }
        if (r < 0.21) return counted("lost answer", { kind: "cut-response", where: "headers" })
        return { kind: "forward" }
      }

      // The operations, generated up front from the seed against a model of what exists.
      type Op =
        | {
            readonly kind: "create"
            readonly labels: Record<string, string>
            readonly annotations: Record<string, string>
          }
        | {
            readonly kind: "update"
            readonly labels: Record<string, string | null>
            readonly annotations: Record<string, string | null>
          }
        | { readonly kind: "delete" }
      const colors = ["red", "green", "blue", "ünïcode-ok-in-values"]
      const exists = new Set<string>()
      let seq = 0
      const plan: Array<{
        readonly key: string
        readonly type: number
        readonly ns: number
        readonly name: string
        readonly op: Op
      }> = []
      for (let i = 0; i < OPERATIONS; i++) {
        const type = ops.int(types.length)
        const ns = ops.int(mine.length)
        const name = `obj-${ops.int(NAMES_PER_TYPE)}`
        const key = `${type}/${ns}/${name}`
        seq++
        let op: Op
        if (!exists.has(key)) {
          op = {
            kind: "create",
            labels: { seq: String(seq), color: ops.pick(colors).replace(/[^a-z-]/g, "") },
            annotations: {
              note: `née ${seq} 🚀`,
              // Never synced (the contract's prefixes), and a near miss that is.
              [`${ops.pick(CONTRACT_DROPPED_ANNOTATION_PREFIXES)}tool`]: String(seq),
              "example.kubernetes.io/kept": String(seq),
            },
          }
          exists.add(key)
        } else if (ops.chance(0.2)) {
          op = { kind: "delete" }
          exists.delete(key)
        } else {
          op = {
            kind: "update",
            labels: {
              seq: String(seq),
              ...(ops.chance(0.3) ? { color: null } : { color: ops.pick(colors).replace(/[^a-z-]/g, "") }),
            },
            annotations: {
              ...(ops.chance(0.5) ? { note: `ñ ${seq} ${"é".repeat(ops.int(50))}` } : { note: null }),
              [`${ops.pick(CONTRACT_DROPPED_ANNOTATION_PREFIXES)}tool`]: String(seq),
            },
          }
        }
        plan.push({ key, type, ns, name, op })
      }

      // Run with some concurrency, but one object's operations strictly in order, so that its seq
      // label only grows in the cluster too.
      const last = new Map<string, Promise<unknown>>()
      const refused: Array<string> = []
      const startedAt = Date.now()
      await pool(
        6,
        plan.map((step) => async () => {
          const before = last.get(step.key) ?? Promise.resolve()
          const run = before.then(async () => {
            const type = types[step.type]!
            const ns = mine[step.ns]!
            const status =
              step.op.kind === "create"
                ? await create(type, ns, step.name, step.op.labels, step.op.annotations)
                : step.op.kind === "update"
                  ? await patchMeta(type, ns, step.name, step.op.labels, step.op.annotations)
                  : await remove(type, ns, step.name)
            if (status >= 300) refused.push(`${step.op.kind} ${type.plural} ${ns}/${step.name}: ${status}`)
          })
          last.set(step.key, run)
          await run
        }),
      )
      const churnMs = Date.now() - startedAt
      expect(refused, `API server refused some operations (seed ${seed})`).toEqual([])

      // Quiet cluster: wait until everything is delivered and every late payload has landed. Then
      // the receiver equals the cluster but for ids a late payload carried (the documented limit).
      const lateIds = () =>
        new Set(
          receiver.requests
            .slice(requestsBefore)
            .filter((r) => isLate(r) && applied(r))
            .flatMap((r) => [...r.payload.upserts.map((u) => u.id), ...r.payload.deletes]),
        )
      // Every request the front held back has reached the receiver (which records a request as
      // soon as it has its body, whatever it then answers).
      const lateDelivered = () =>
        front.actions.slice(actionsBefore).filter((a) => a.kind === "forward" && a.late === true).length ===
        receiver.requests.slice(requestsBefore).filter(isLate).length
      const notLate = async () =>
        (await Promise.all(mine.map((ns) => differences(receiver, types, ns))))
          .flat()
          .filter((d) => !lateIds().has(idOf(d)))
      let left: ReadonlyArray<string> = []
      let convergedMs = 0
      const quietAt = Date.now()
      try {
        await eventually(
          async () => {
            if (!lateDelivered() || (await controller.pending()) > 0) return false
            left = await notLate()
            return left.length === 0
          },
          () =>
            `${left.length} differences not explained by a late payload, e.g. ${left.slice(0, 8).join(", ")}`,
          90_000,
        )
        convergedMs = Date.now() - quietAt
        // Among the requests the sender saw through (all but the late ones), states only move forward.
        for (const ns of mine) expect(olderAfterNewerIn(receiver, `${ns}/`, (r) => !isLate(r))).toEqual([])
      } catch (error) {
        throw new Error(`FAULT_SEED=${seed} reproduces this run: ${error}`)
      }
      const overwritten = (await Promise.all(mine.map((ns) => differences(receiver, types, ns)))).flat()

      // A resync re-sends every object, which repairs what late payloads overwrote. Only an upsert that
      // landed after its object's delete stays: nobody knows that id any more (like a crash's orphans).
      front.decide = () => ({ kind: "forward" })
      await controller.resync()
      let orphans: ReadonlyArray<string> = []
      try {
        await eventually(
          async () => {
            if ((await controller.pending()) > 0) return false
            const all = (await Promise.all(mine.map((ns) => differences(receiver, types, ns)))).flat()
            orphans = all
            return all.every((d) => d.startsWith("extra ") && lateIds().has(idOf(d)))
          },
          () => `after the resync: ${orphans.slice(0, 8).join(", ")}`,
          60_000,
        )
      } catch (error) {
        throw new Error(`FAULT_SEED=${seed} reproduces this run: ${error}`)
      }
      for (const orphan of orphans) {
        const id = idOf(orphan)
        const lastApplied = receiver.requests.filter(
          (r) => applied(r) && (r.payload.upserts.some((u) => u.id === id) || r.payload.deletes.includes(id)),
        )
        // The last thing applied for an orphan is a late upsert.
        const last = lastApplied.at(-1)!
        expect(isLate(last) && last.payload.upserts.some((u) => u.id === id), orphan).toBe(true)
      }

      const faultText = [...faultCounts].map(([k, n]) => `${k} ${n}`).join(", ")
      console.log(
        `randomized convergence (FAULT_SEED=${seed}): ${OPERATIONS} operations in ${churnMs} ms, ` +
          `${receiver.requests.length - requestsBefore} requests reached the receiver, faults: ${faultText}; ` +
          `quiet and delivered ${convergedMs} ms after the last operation; late payloads overwrote ` +
          `${overwritten.length} ids, ${orphans.length} left as orphans after the resync`,
      )
      // The faults really happened (with 600 operations some of each kind are all but certain).
      expect(faultCounts.get("503") ?? 0).toBeGreaterThan(0)
      expect(faultCounts.get("late") ?? 0).toBeGreaterThan(0)
      expect(receiver.requests.length - requestsBefore).toBeGreaterThan(10)
    },
    // 600 operations, then up to 90 s to settle and 60 s after the resync.
    300_000,
  )

  it("stale overwrite, exposed: a payload applied after the sender timed out wins until the next resync", async () => {
    const ns = await createNamespace("fault-late")
    namespaces.push(ns)
    const requestsBefore = receiver.requests.length
    const id = `${ns}/v1/ConfigMap/late`
    receiver.script = () => undefined
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    let held = 0
    front.decide = (_, body) => {
      const payload = JSON.parse(body) as { upserts: Array<{ id: string; labels: Record<string, string> }> }
      if (held === 0 && payload.upserts.some((u) => u.id === id && u.labels.seq === "1")) {
        held++
        return { kind: "forward", until: released, late: true }
      }
      return { kind: "forward" }
    }
    await mustCreate(configMaps, ns, "late", { seq: "1" })
    // The sender gives up after SEND_TIMEOUT_MS and retries: seq=1 arrives, then seq=2.
    await eventually(
      () => receiver.state.get(id)?.labels.seq === "1",
      () => "the retry of seq=1 never arrived",
    )
    expect(await patchMeta(configMaps, ns, "late", { seq: "2" })).toBe(200)
    await eventually(
      () => receiver.state.get(id)?.labels.seq === "2",
      () => "seq=2 never arrived",
    )
    expect(held).toBe(1)
    // The receiver now gets the first request, which it still applies: the older state wins.
    release()
    await eventually(
      () => receiver.requests.slice(requestsBefore).some(isLate),
      () => "the held request was not delivered",
    )
    expect(receiver.state.get(id)?.labels.seq).toBe("1")
    expect(olderAfterNewer(receiver, `${ns}/`)).toEqual([`${id}: seq=1 after 2`])
    expect(await differences(receiver, types, ns)).toEqual([
      `stale ${id} (labels: {"seq":"1"}, expected {"seq":"2"})`,
    ])
    // Nothing repairs it but the next change of the object or a resync.
    await controller.resync()
    await converge(receiver, types, [ns])
    expect(receiver.state.get(id)?.labels.seq).toBe("2")
  })
})
