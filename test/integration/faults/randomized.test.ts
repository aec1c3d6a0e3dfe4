/**
 * Seeded randomized convergence: random creates, label and annotation updates and deletes across
 * three types and three namespaces, while the receiver (and a front before it) fails at random:
 * 503, 429 with Retry-After, connection dropped, garbage, no answer (past the send timeout), slow
 * answers (within it), answers lost after the payload was applied. Once the cluster is quiet, the
 * receiver must equal the cluster, with no older state of an object after a newer one.
 *
 * The seed is printed; `FAULT_SEED=<n> npx vitest run test/integration/faults/randomized.test.ts`
 * replays the same operations and the same fault for the n-th request (the interleaving of
 * requests with operations still depends on timing).
 */
import { Duration } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createNamespace, deleteNamespace, kubeContext } from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import {
  configMaps,
  converge,
  create,
  olderAfterNewer,
  patchMeta,
  pool,
  remove,
  secrets,
  serviceAccounts,
} from "../../support/faults/churn.js"
import { type FaultController, startFaultController } from "../../support/faults/controller.js"
import { type FaultyFront, startFaultyFront } from "../../support/faults/FaultyFront.js"
import { mulberry32, seedFromEnv } from "../../support/faults/random.js"
import { type Receiver, startReceiver } from "../../support/Receiver.js"

const OPERATIONS = 600
const NAMES_PER_TYPE = 12
const SEND_TIMEOUT_MS = 1_000
const types = [configMaps, secrets, serviceAccounts]
const seed = seedFromEnv()

let receiver: Receiver
let front: FaultyFront
let controller: FaultController
let namespaces: Array<string> = []

beforeAll(async () => {
  console.log(`randomized convergence: FAULT_SEED=${seed}`)
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
  namespaces = await Promise.all([0, 1, 2].map((i) => createNamespace(`fault-random-${i}`)))
})

afterAll(async () => {
  await controller?.stop()
  await front?.close()
  await receiver?.close()
  for (const ns of namespaces) await deleteNamespace(ns)
})

describe("seeded randomized convergence", () => {
  it("random creates, updates and deletes over 3 types x 3 namespaces with random receiver faults: converges", async () => {
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
      // Slow answers stay well inside the send timeout: a request that reached the receiver after
      // the sender gave up could apply an old state late (see the README's Failure behaviour).
      if (r < 0.12) return counted("slow", { kind: "forward", delayMs: 50 + Math.floor(delays.next() * 350) })
      if (r < 0.17) return counted("lost answer", { kind: "cut-response", where: "headers" })
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
      const ns = ops.int(namespaces.length)
      const name = `obj-${ops.int(NAMES_PER_TYPE)}`
      const key = `${type}/${ns}/${name}`
      seq++
      let op: Op
      if (!exists.has(key)) {
        op = {
          kind: "create",
          labels: { seq: String(seq), color: ops.pick(colors).replace(/[^a-z-]/g, "") },
          annotations: { note: `née ${seq} 🚀` },
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
          annotations: ops.chance(0.5) ? { note: `ñ ${seq} ${"é".repeat(ops.int(50))}` } : { note: null },
        }
      }
      plan.push({ key, type, ns, name, op })
    }

    // Run with some concurrency, but one object's operations strictly in order, so that its seq
    // label only grows in the cluster too.
    const last = new Map<string, Promise<unknown>>()
    const statuses: Array<number> = []
    const startedAt = Date.now()
    await pool(
      6,
      plan.map((step) => async () => {
        const before = last.get(step.key) ?? Promise.resolve()
        const run = before.then(async () => {
          const type = types[step.type]!
          const ns = namespaces[step.ns]!
          const status =
            step.op.kind === "create"
              ? await create(type, ns, step.name, step.op.labels, step.op.annotations)
              : step.op.kind === "update"
                ? await patchMeta(type, ns, step.name, step.op.labels, step.op.annotations)
                : await remove(type, ns, step.name)
          statuses.push(status)
        })
        last.set(step.key, run)
        await run
      }),
    )
    const churnMs = Date.now() - startedAt
    const refused = statuses.filter((s) => s >= 300)
    expect(refused, `API server refused some operations (seed ${seed})`).toEqual([])

    let convergedMs = 0
    try {
      convergedMs = await converge(receiver, types, namespaces, 90_000)
      for (const ns of namespaces) expect(olderAfterNewer(receiver, `${ns}/`)).toEqual([])
    } catch (error) {
      throw new Error(`FAULT_SEED=${seed} reproduces this run: ${error}`)
    }
    const faultText = [...faultCounts].map(([k, n]) => `${k} ${n}`).join(", ")
    console.log(
      `randomized convergence (FAULT_SEED=${seed}): ${OPERATIONS} operations in ${churnMs} ms, ` +
        `${receiver.requests.length} requests reached the receiver, faults: ${faultText}; ` +
        `converged ${convergedMs} ms after the last operation`,
    )
    // The faults really happened (with 600 operations some of each kind are all but certain).
    expect(faultCounts.get("503") ?? 0).toBeGreaterThan(0)
    expect(receiver.requests.length).toBeGreaterThan(10)
  })
})
