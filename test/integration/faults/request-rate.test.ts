/**
 * A misbehaving API server must not make the controller hammer it. The controller process watches
 * ConfigMaps through a proxy in front of the real kube-apiserver that answers 410 to every LIST, or
 * cuts every watch off after its first event. The bound comes from the watch backoff's own
 * parameters (`WATCH_BACKOFF`, `JITTER`): after n failures in a row the next request waits at
 * least JITTER.min · min(max, initial · 2^n), and nothing resets that while every request fails
 * within `healthyAfter`. So K failing requests span at least the sum of the first K-1 such delays:
 * the test counts the requests between two points it marks (the first failure, and the moment it
 * has seen K of them) and checks that count against what the schedule allows in that span. A
 * controller that retried at once, or restarted its backoff at every event, makes K requests in a
 * fraction of it.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { JITTER } from "../../../src/schedule/Backoff.js"
import { WATCH_BACKOFF } from "../../../src/watch/TypeWatch.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
} from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import { buildDist, freePort, killAll, type Spawned, spawnController } from "../../support/process.js"
import {
  type RecordedRequest,
  type RecordingProxy,
  startRecordingProxy,
} from "../../support/RecordingProxy.js"

beforeAll(() => buildDist(), 120_000)
afterAll(() => killAll())

const initialMs = Duration.toMillis(WATCH_BACKOFF.initial)
const maxMs = Duration.toMillis(WATCH_BACKOFF.max)

/** The least time the schedule lets `count` requests in a row that all fail take, first to last. */
const leastSpanOf = (count: number): number => {
  let span = 0
  for (let n = 0; n < count - 1; n++) span += JITTER.min * Math.min(maxMs, initialMs * 2 ** n)
  return span
}

/** How many failing requests in a row the schedule allows within `spanMs`, counting the first. */
const allowedWithin = (spanMs: number): number => {
  let count = 1
  while (leastSpanOf(count + 1) <= spanMs) count++
  return count
}

const collection = "/api/v1/configmaps"
const pathOf = (r: RecordedRequest) => new URL(r.path, "http://proxy")
const isWatch = (r: RecordedRequest) =>
  pathOf(r).pathname === collection && ["1", "true"].includes(pathOf(r).searchParams.get("watch") ?? "")
const isList = (r: RecordedRequest) =>
  pathOf(r).pathname === collection && !pathOf(r).searchParams.has("watch")
/** A WATCH resuming from a version: not the streaming initial list. */
const isResumedWatch = (r: RecordedRequest) => isWatch(r) && !pathOf(r).searchParams.has("sendInitialEvents")

const startController = async (proxy: RecordingProxy, extra: Record<string, string> = {}) =>
  spawnController({
    KUBECONFIG: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "request-rate-"))),
    WATCH_RESOURCE_TYPES: "configmaps",
    HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    ...extra,
  })

/**
 * Waits until `K` requests matching `failing` arrived, then checks the count in the span from the
 * first to the moment of the check against the schedule. Returns the figures for the log line.
 */
const boundedRate = async (
  proxy: RecordingProxy,
  controller: Spawned,
  failing: (r: RecordedRequest) => boolean,
  K: number,
) => {
  const seen = () => proxy.requests.filter(failing)
  await eventually(
    () => seen().length >= K,
    () =>
      `only ${seen().length} failing requests of ${collection}; all: ${proxy.requests
        .filter((r) => pathOf(r).pathname === collection)
        .map((r) => r.path)
        .join(", ")}; the controller's last output: ${controller.stderr().slice(-2000)}`,
    leastSpanOf(K) * JITTER.max + 60_000,
  )
  const markedAt = Date.now()
  const all = seen()
  const spanMs = markedAt - all[0]!.at
  const count = all.length
  return { count, spanMs, allowed: allowedWithin(spanMs) }
}

describe("request rate against a misbehaving API server", () => {
  it("410 Gone to every LIST: the LISTs back off as the schedule says", async () => {
    const proxy = await startRecordingProxy(kubeContext())
    proxy.fault = (r) =>
      isList(r)
        ? {
            _tag: "Answer",
            status: 410,
            body: {
              kind: "Status",
              apiVersion: "v1",
              status: "Failure",
              reason: "Expired",
              code: 410,
              message: "too old resource version",
            },
          }
        : undefined
    // LISTs rather than streaming initial lists, so that every list is a LIST.
    const controller = await startController(proxy, { WATCH_LIST: "false" })
    const K = 5
    const { count, spanMs, allowed } = await boundedRate(proxy, controller, isList, K)
    console.log(
      `410 on every LIST: ${count} LISTs in ${spanMs} ms, the schedule allows ${allowed} (at least ${leastSpanOf(K)} ms for ${K})`,
    )
    expect(count).toBeGreaterThanOrEqual(K)
    expect(count).toBeLessThanOrEqual(allowed)
    // It kept asking for nothing else of that collection: no watch without a list.
    expect(proxy.requests.filter((r) => pathOf(r).pathname === collection && !isList(r))).toEqual([])
    controller.child.kill("SIGTERM")
    expect((await controller.exit).code).toBe(0)
    await proxy.close()
  })

  it("every watch cut off after one event: the watches back off as the schedule says", async () => {
    const ns = await createNamespace("request-rate")
    // A change every 200 ms: every watch has an event to deliver before it is cut.
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "ticker" } }),
      201,
    )
    let ticking = true
    const ticker = (async () => {
      for (let n = 0; ticking; n++) {
        await adminRequest(
          "PATCH",
          `/api/v1/namespaces/${ns}/configmaps/ticker`,
          { metadata: { labels: { n: String(n) } } },
          { contentType: "application/merge-patch+json" },
        )
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    })()
    const proxy = await startRecordingProxy(kubeContext())
    proxy.fault = (r) => (isWatch(r) ? { _tag: "CutAfterLines", lines: 1 } : undefined)
    const controller = await startController(proxy)
    try {
      const K = 5
      const { count, spanMs, allowed } = await boundedRate(proxy, controller, isResumedWatch, K)
      // Each of them did deliver an event before it was cut (the cut is not a watch that never opened).
      const delivered = proxy.requests.flatMap((r, i) =>
        isResumedWatch(r) && proxy.responses[i]!.includes("\n") ? [i] : [],
      )
      console.log(
        `every watch cut after one event: ${count} watches in ${spanMs} ms (${delivered.length} delivered an event), ` +
          `the schedule allows ${allowed} (at least ${leastSpanOf(K)} ms for ${K})`,
      )
      expect(delivered.length).toBeGreaterThanOrEqual(K - 1)
      expect(count).toBeGreaterThanOrEqual(K)
      expect(count).toBeLessThanOrEqual(allowed)
    } finally {
      ticking = false
      await ticker
    }
    controller.child.kill("SIGTERM")
    expect((await controller.exit).code).toBe(0)
    await proxy.close()
    await deleteNamespace(ns)
  })
})
