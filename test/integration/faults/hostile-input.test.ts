/**
 * Hostile input from both sides. From the cluster: labels and annotations at their maximum sizes,
 * 1,000 labels on one object, non-ASCII and odd names where Kubernetes allows them (it does not for
 * most types: ConfigMap names are DNS subdomains; RBAC names are only path segments), and API
 * answers cut in the middle of a list or a watch. From the receiver: garbage, no answer, a
 * connection closed before or in the middle of the answer. In every case: no crash, a clear log
 * line, and the receiver ends equal to the cluster.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
} from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import type { ListedType } from "../../support/convergence.js"
import { startCuttingProxy } from "../../support/faults/CuttingProxy.js"
import { configMaps, converge, mustCreate, patchMeta, remove } from "../../support/faults/churn.js"
import { type FaultController, type LogLine, startFaultController } from "../../support/faults/controller.js"
import { startFaultyFront } from "../../support/faults/FaultyFront.js"
import { startReceiver } from "../../support/Receiver.js"

const roles: ListedType = { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles" }

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

const start = async (options: {
  readonly url: string
  readonly kubeconfig?: string
  readonly sendTimeoutMs?: number
}): Promise<FaultController> => {
  const controller = await startFaultController({
    kubeconfig: options.kubeconfig ?? kubeContext().adminKubeconfig,
    url: options.url,
    ...(options.sendTimeoutMs === undefined ? {} : { sendTimeoutMs: options.sendTimeoutMs }),
    config: { watchResourceTypes: ["configmaps", "roles.rbac.authorization.k8s.io"], batchMaxSize: 20 },
  })
  cleanup.push(() => controller.stop())
  await eventually(
    () => controller.ready(),
    () => `controller never became ready: ${JSON.stringify(controller.logs.slice(-5))}`,
    60_000,
  )
  return controller
}

const receiverFor = async () => {
  const receiver = await startReceiver()
  cleanup.push(() => receiver.close())
  return receiver
}

/** A warning or error must say what failed, in words. */
const unclear = (logs: ReadonlyArray<LogLine>) =>
  logs.filter(
    (l) =>
      (l.level === "WARN" || l.level === "ERROR" || l.level === "FATAL") &&
      (l.level === "FATAL" ||
        typeof l.annotations.error !== "string" ||
        l.annotations.error.length < 5 ||
        /\[object Object\]|^undefined$/.test(String(l.annotations.error))),
  )

// Label and annotation limits (k8s.io/apimachinery validation): a qualified name is an optional
// DNS-subdomain prefix of at most 253 characters, '/', and a name of at most 63; values at most 63;
// all annotations together at most 256 KiB (keys plus values, in bytes).
const label63 = (c: string) => `${c}${"x".repeat(61)}${c}`
const prefix253 = [label63("a"), label63("b"), label63("c"), `d${"y".repeat(59)}d`].join(".")
const ANNOTATION_LIMIT = 256 * 1024
const utf8Value = (bytes: number) => {
  const rockets = "🚀".repeat(1_000) // 4 bytes each
  const rest = bytes - Buffer.byteLength(rockets)
  return rockets + "é".repeat(Math.floor(rest / 2)) + "a".repeat(rest % 2)
}

describe("hostile input", () => {
  it("maximum label and annotation sizes, 1,000 labels, non-ASCII names and values: synced exactly", async () => {
    const receiver = await receiverFor()
    const controller = await start({ url: receiver.url })
    const ns = await createNamespace("fault-hostile")
    cleanup.push(() => deleteNamespace(ns))
    expect(prefix253.length).toBe(253)

    const maxKey = `${prefix253}/${label63("n")}`
    await mustCreate(configMaps, ns, "max-label", { [maxKey]: label63("v") })
    // One byte over the annotation limit is refused by the API server: the next object is at the limit.
    const key = "big.example.com/blob"
    const atLimit = utf8Value(ANNOTATION_LIMIT - key.length)
    expect(Buffer.byteLength(key) + Buffer.byteLength(atLimit)).toBe(ANNOTATION_LIMIT)
    expect(
      (
        await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, {
          metadata: { name: "over-limit", annotations: { [key]: `${atLimit}a` } },
        })
      ).status,
    ).toBe(422)
    await mustCreate(configMaps, ns, "max-annotations", {}, { [key]: atLimit })
    const thousand = Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`label-${i}`, `value-${i}`]))
    await mustCreate(configMaps, ns, "thousand-labels", thousand, {
      "note.example.com/unicode": "日本語 🚀 ñ \u0000 \u202e?",
    })
    // ConfigMap names must be DNS subdomains: non-ASCII is refused ...
    expect(
      (await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "café" } }))
        .status,
    ).toBe(422)
    // ... but RBAC names only have to be path segments: spaces, '?', '#', ':' and any UTF-8 pass.
    const oddName = "rôle 日本 🚀 ?#: x"
    expectStatus(
      await adminRequest("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
        metadata: {
          name: oddName,
          labels: { app: "odd" },
          annotations: { "note.example.com/ss": "über ß çà 🚀" },
        },
        rules: [],
      }),
      201,
    )
    const convergedMs = await converge(receiver, [configMaps, roles], [ns])
    const id = (kind: string, name: string) =>
      kind === "Role" ? `${ns}/rbac.authorization.k8s.io/v1/Role/${name}` : `${ns}/v1/ConfigMap/${name}`
    expect(receiver.state.get(id("ConfigMap", "max-label"))?.labels).toEqual({ [maxKey]: label63("v") })
    expect(receiver.state.get(id("ConfigMap", "max-annotations"))?.annotations[key]).toBe(atLimit)
    expect(Object.keys(receiver.state.get(id("ConfigMap", "thousand-labels"))?.labels ?? {})).toHaveLength(
      1_000,
    )
    expect(receiver.state.get(id("Role", oddName))?.annotations).toEqual({
      "note.example.com/ss": "über ß çà 🚀",
    })

    // Changes to the same objects: one of the 1,000 labels, the big annotation, the odd name deleted.
    expect(
      await patchMeta(configMaps, ns, "thousand-labels", { "label-999": "changed", "label-0": null }),
    ).toBe(200)
    const changed = utf8Value(ANNOTATION_LIMIT - key.length - 1)
    expect(await patchMeta(configMaps, ns, "max-annotations", {}, { [key]: changed })).toBe(200)
    expectStatus(
      await adminRequest(
        "DELETE",
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/${encodeURIComponent(oddName)}`,
      ),
      200,
    )
    await converge(receiver, [configMaps, roles], [ns])
    expect(receiver.state.has(id("Role", oddName))).toBe(false)
    expect(receiver.state.get(id("ConfigMap", "thousand-labels"))?.labels["label-999"]).toBe("changed")
    const largest = Math.max(...receiver.requests.map((r) => Buffer.byteLength(JSON.stringify(r.payload))))
    console.log(`hostile objects: converged in ${convergedMs} ms; largest request ${largest} bytes`)
    expect(unclear(controller.logs)).toEqual([])
    expect(await controller.ready()).toBe(true)
  })

  it("a receiver that answers garbage, hangs, closes before and in the middle of its answer: retried, logged, converges", async () => {
    const receiver = await receiverFor()
    const front = await startFaultyFront(receiver.url)
    cleanup.push(() => front.close())
    const controller = await start({ url: front.url, sendTimeoutMs: 1_000 })
    const ns = await createNamespace("fault-receiver")
    cleanup.push(() => deleteNamespace(ns))
    await converge(receiver, [configMaps], [ns])

    // The next requests meet one fault each, in this order; then everything is answered normally.
    const faults = ["garbage", "destroy", "hang", "cut-headers", "cut-body", "slow"] as const
    const firstRequest = receiver.requests.length
    const firstAction = front.actions.length
    receiver.script = (_, index) => {
      const fault = faults[index - firstRequest]
      return fault === "garbage" || fault === "destroy" || fault === "hang" ? { kind: fault } : undefined
    }
    front.decide = (index) => {
      const fault = faults[index - firstAction]
      return fault === "cut-headers" || fault === "cut-body"
        ? { kind: "cut-response", where: fault === "cut-headers" ? "headers" : "body" }
        : fault === "slow"
          ? { kind: "forward", delayMs: 700 }
          : { kind: "forward" }
    }
    // One object at a time, each past the debounce window and the flush interval: one request each.
    const names = Array.from({ length: 10 }, (_, i) => `cm-${i}`)
    for (const name of names) {
      await mustCreate(configMaps, ns, name, { seq: "0" })
      await new Promise((r) => setTimeout(r, 400))
    }
    await remove(configMaps, ns, "cm-0")
    const convergedMs = await converge(receiver, [configMaps], [ns], 60_000)
    const kinds = receiver.requests.slice(firstRequest).map((r) => r.answer.kind)
    const warnings = controller.logs.filter((l) => l.message === "receiver unavailable; will retry")
    console.log(
      `hostile receiver: converged in ${convergedMs} ms; answers ${kinds.join(",")}; ` +
        `front ${front.actions
          .slice(firstAction)
          .map((a) => a.kind)
          .join(",")}; warnings: ` +
        warnings.map((w) => String(w.annotations.error).slice(0, 80)).join(" | "),
    )
    for (const fault of ["garbage", "destroy", "hang"] as const) expect(kinds).toContain(fault)
    const handled = front.actions.slice(firstAction)
    expect(handled.filter((a) => a.kind === "cut-response")).toHaveLength(2)
    expect(handled.some((a) => a.kind === "forward" && a.delayMs === 700)).toBe(true)
    // Garbage, a dropped connection, the hang (timeout) and the answer cut inside its headers: four
    // retried failures. An answer cut after its 200 status line counts as delivered (the status is
    // the receiver's verdict; the body is never read), so it is not retried: exactly four warnings.
    expect(warnings).toHaveLength(4)
    expect(warnings.some((w) => /no answer within/.test(String(w.annotations.error)))).toBe(true)
    expect(unclear(controller.logs)).toEqual([])
    expect(await controller.ready()).toBe(true)
  })

  it("API answers cut in the middle of a list and of watches (connection reset, or a clean end after half a line): retried, logged, converges", async () => {
    const proxy = await startCuttingProxy(kubeContext())
    cleanup.push(() => proxy.close())
    // The first list of each type and the first four watch answers that carry data are cut.
    let lists = 0
    let watches = 0
    proxy.decide = ({ path, watch }) => {
      if (
        path.startsWith("/api/v1/configmaps") ||
        path.startsWith("/apis/rbac.authorization.k8s.io/v1/roles")
      ) {
        if (!watch && lists < 2) return lists++ % 2 === 0 ? "reset" : "end"
        if (watch && watches < 4) return watches++ % 2 === 0 ? "reset" : "end"
      }
      return undefined
    }
    const receiver = await receiverFor()
    const controller = await start({
      url: receiver.url,
      kubeconfig: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "cut-"))),
    })
    const ns = await createNamespace("fault-cut")
    cleanup.push(() => deleteNamespace(ns))
    for (let round = 0; round < 4; round++) {
      await mustCreate(configMaps, ns, `cm-${round}`, { round: String(round) })
      await patchMeta(configMaps, ns, `cm-${round}`, { round: `${round}b` })
      if (round > 0) await remove(configMaps, ns, `cm-${round - 1}`)
      await new Promise((r) => setTimeout(r, 500))
    }
    const convergedMs = await converge(receiver, [configMaps, roles], [ns], 90_000)
    const failures = controller.logs.filter((l) => l.message === "watch failed; retrying with backoff")
    console.log(
      `API answers cut: ${proxy.cuts.length} cuts (${proxy.cuts.map((c) => `${c.how}@${c.bytesSent}B`).join(", ")}); ` +
        `converged in ${convergedMs} ms; errors logged: ${failures.map((f) => String(f.annotations.error).slice(0, 90)).join(" | ")}`,
    )
    expect(proxy.cuts.filter((c) => !/[?&]watch=/.test(c.path)).length).toBe(2)
    expect(proxy.cuts.filter((c) => /[?&]watch=/.test(c.path)).length).toBeGreaterThanOrEqual(2)
    expect(failures.length).toBeGreaterThanOrEqual(proxy.cuts.length)
    expect(unclear(controller.logs)).toEqual([])
    expect(await controller.ready()).toBe(true)
  })
})
