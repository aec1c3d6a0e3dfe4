/**
 * The HTTP sender and the pipeline against a real receiver on a loopback socket: no mocked client.
 * Real time, short windows: these tests measure behaviour, not speed.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Metric, Option, Queue, Stream } from "effect"
import { WriteFence } from "../../src/http/WriteFence.js"
import * as Metrics from "../../src/metrics/Metrics.js"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import * as Change from "../../src/record/Change.js"
import * as HttpSink from "../../src/sink/HttpSink.js"
import * as Sinks from "../../src/sink/Select.js"
import { notLeader } from "../../src/sink/Sink.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"
import { record, upsert } from "../unit/fixtures.js"

const options: Pipeline.PipelineOptions = {
  debounceWindowMs: 0,
  debounceMaxWaitMs: 1_000,
  batchFlushIntervalMs: 0,
  batchMaxSize: 50,
  shutdownTimeout: Duration.seconds(10),
  retryInitialBackoff: Duration.millis(50),
  retryMaxBackoff: Duration.millis(400),
}

let receiver: Receiver
beforeEach(async () => {
  receiver = await startReceiver()
})
afterEach(async () => {
  await receiver.close()
})

const sinkLayer = (timeout: Duration.DurationInput = "5 seconds") =>
  HttpSink.layer({ url: receiver.url, timeout }).pipe(Layer.provide(NodeHttpClient.layerUndici))

const run = (
  changes: ReadonlyArray<Change.Change>,
  overrides: Partial<Pipeline.PipelineOptions> = {},
  timeout?: Duration.DurationInput,
) =>
  Pipeline.run(Stream.fromIterable(changes), { ...options, ...overrides }).pipe(
    Effect.provide(sinkLayer(timeout)),
  )

const succeeded = () => receiver.requests.filter((r) => r.answer.kind === "status" && r.answer.status === 200)

describe("HTTP sender against a real receiver", () => {
  it.live("posts the payload contract as JSON", () =>
    Effect.gen(function* () {
      yield* run([upsert("a", { app: "web" })])
      expect(receiver.requests).toHaveLength(1)
      expect(receiver.requests[0]!.headers["content-type"]).toMatch(/^application\/json/)
      expect(receiver.requests[0]!.payload).toEqual({ upserts: [record("a", { app: "web" })], deletes: [] })
    }),
  )

  it.live("encodes with the wire Schema: an entry that breaks it is never sent, the others arrive", () =>
    Effect.gen(function* () {
      const broken = { ...record("broken"), createdAt: "yesterday" } // not RFC 3339 with seconds
      yield* run([upsert("a"), Change.upsert(broken), upsert("b")])
      // Halved down to the broken entry; no request ever carried it.
      expect(receiver.requests.flatMap((r) => r.payload.upserts.map((u) => u.id))).not.toContain(broken.id)
      expect([...receiver.state.keys()].sort()).toEqual([record("a").id, record("b").id].sort())
    }),
  )

  it.live("retries a 5xx and delivers once", () =>
    Effect.gen(function* () {
      receiver.script = (_, index) =>
        index === 0 ? { kind: "status", status: 503, body: "busy" } : undefined
      yield* run([upsert("a")])
      expect(
        receiver.requests.map((r) => (r.answer.kind === "status" ? r.answer.status : r.answer.kind)),
      ).toEqual([503, 200])
      expect(succeeded()).toHaveLength(1)
      expect([...receiver.state.keys()]).toEqual([record("a").id])
    }),
  )

  it.live("honours Retry-After on a 429", () =>
    Effect.gen(function* () {
      receiver.script = (_, index) =>
        index === 0 ? { kind: "status", status: 429, retryAfter: "1" } : undefined
      yield* run([upsert("a")])
      expect(receiver.requests).toHaveLength(2)
      const waited = receiver.requests[1]!.at - receiver.requests[0]!.at
      expect(waited).toBeGreaterThanOrEqual(1_000)
    }),
  )

  it.live(
    "a 400 for one poisoned entry in a batch of 50: the other 49 arrive, the one is set aside and counted",
    () =>
      Effect.gen(function* () {
        const poisoned = record("poisoned").id
        receiver.script = (payload) =>
          payload.upserts.some((u) => u.id === poisoned)
            ? { kind: "status", status: 400, body: `invalid entry ${poisoned}` }
            : undefined
        const changes = Array.from({ length: 49 }, (_, i) => upsert(`ok-${i}`))
        changes.splice(30, 0, upsert("poisoned"))
        const before = (yield* Metric.value(Metric.tagged(Metrics.rejectedEntries, "pipeline", "instances")))
          .count
        yield* run(changes)
        const after = (yield* Metric.value(Metric.tagged(Metrics.rejectedEntries, "pipeline", "instances")))
          .count
        expect(receiver.state.size).toBe(49)
        expect(receiver.state.has(poisoned)).toBe(false)
        expect(after - before).toBe(1)
        // Bisection, not one request per entry: 50 entries need at most 2·log2(50) ≈ 12 requests.
        expect(receiver.requests.length).toBeLessThanOrEqual(13)
      }),
  )

  it.live(
    "a 413 above the receiver's body limit: halved until the parts fit; an entry over the limit alone is set aside and counted",
    () =>
      Effect.gen(function* () {
        const limited = yield* Effect.acquireRelease(
          Effect.promise(() => startReceiver({ maxBodyBytes: 20_000 })),
          (r) => Effect.promise(() => r.close()),
        )
        const changes = Array.from({ length: 30 }, (_, i) => upsert(`big-${i}`, { blob: "x".repeat(3_000) }))
        changes.splice(12, 0, upsert("huge", { blob: "x".repeat(30_000) }))
        // The sink reports it as a rejection of this request, not as a receiver to retry later.
        const refusal = yield* HttpSink.make({ url: limited.url, timeout: "5 seconds" }).pipe(
          Effect.flatMap((sink) => sink.send(Pipeline.toPayload(changes))),
          Effect.provide(NodeHttpClient.layerUndici),
          Effect.flip,
        )
        expect(refusal._tag === "SinkRejected" && refusal.tooLarge).toBe(true)
        const rejected = Metric.value(Metric.tagged(Metrics.rejectedEntries, "pipeline", "instances"))
        const before = (yield* rejected).count
        yield* Pipeline.run(Stream.fromIterable(changes), options).pipe(
          Effect.provide(
            HttpSink.layer({ url: limited.url, timeout: "5 seconds" }).pipe(
              Layer.provide(NodeHttpClient.layerUndici),
            ),
          ),
        )
        expect(
          limited.requests.filter((r) => r.answer.kind === "status" && r.answer.status === 413).length,
        ).toBeGreaterThan(1)
        expect(limited.state.size).toBe(30)
        expect(limited.state.has(record("huge").id)).toBe(false)
        expect((yield* rejected).count - before).toBe(1)
      }).pipe(Effect.scoped),
  )

  it.live(
    "the write fence, asked as each request is written: a closed one sends nothing and reads as not the leader",
    () =>
      Effect.gen(function* () {
        let open = true
        let asked = 0
        const send = (id: string) =>
          HttpSink.make({ url: receiver.url, timeout: "5 seconds" }).pipe(
            Effect.flatMap((sink) => sink.send(Pipeline.toPayload([upsert(id)]))),
            Effect.provide(Sinks.httpClientLayer(Option.none())),
            Effect.provideService(WriteFence, () => {
              asked++
              return open
            }),
            Effect.either,
          )
        expect((yield* send("a"))._tag).toBe("Right")
        open = false
        const refused = yield* send("b")
        expect(refused).toEqual(Either.left(notLeader))
        expect(asked).toBe(2)
        expect(receiver.requests.map((r) => r.payload.upserts.map((u) => u.id))).toEqual([[record("a").id]])
      }),
  )

  it.live("BATCH_MAX_BYTES bounds the bodies on the wire, and batches fill up to it", () =>
    Effect.gen(function* () {
      const cap = 20_000
      const changes = Array.from({ length: 30 }, (_, i) => upsert(`big-${i}`, { blob: "é".repeat(1_500) }))
      yield* run(changes, { batchMaxBytes: cap })
      expect(receiver.state.size).toBe(30)
      const sizes = receiver.requests.map((r) => r.bytes)
      expect(Math.max(...sizes)).toBeLessThanOrEqual(cap)
      // One entry weighs a little over 3,000 bytes (é is two in UTF-8): six fit, a seventh would not.
      expect(receiver.requests.map((r) => r.payload.upserts.length)).toEqual([6, 6, 6, 6, 6])
    }),
  )

  it.live("a receiver that does not answer times out and the batch is retried", () =>
    Effect.gen(function* () {
      receiver.script = (_, index) => (index === 0 ? { kind: "hang" } : undefined)
      yield* run([upsert("a")], {}, "300 millis")
      expect(receiver.requests.map((r) => r.answer.kind)).toEqual(["hang", "status"])
      expect(receiver.state.has(record("a").id)).toBe(true)
    }),
  )

  it.live("a dropped connection or a garbled answer is retried", () =>
    Effect.gen(function* () {
      receiver.script = (_, index) =>
        index === 0 ? { kind: "destroy" } : index === 1 ? { kind: "garbage" } : undefined
      yield* run([upsert("a")])
      expect(receiver.requests.map((r) => r.answer.kind)).toEqual(["destroy", "garbage", "status"])
      expect(receiver.state.has(record("a").id)).toBe(true)
    }),
  )

  it.live(
    "receiver down during 1,000 changes to 200 ids: every last state arrives, none older after newer, pending ≤ 200",
    () =>
      Effect.gen(function* () {
        yield* Effect.promise(() => receiver.stop())
        let maxPending = 0
        yield* Effect.scoped(
          Effect.gen(function* () {
            const queue = yield* Queue.unbounded<ReadonlyArray<Change.Change>>()
            const pipeline = yield* Pipeline.make(
              { ...options, debounceWindowMs: 20 },
              Pipeline.fromChangeQueue(queue),
            )
            for (let i = 0; i < 1_000; i++) {
              yield* Queue.offer(queue, [upsert(`id-${i % 200}`, { v: String(i) })])
              maxPending = Math.max(maxPending, yield* pipeline.pending)
              if (i % 100 === 99) yield* Effect.sleep("30 millis")
              if (i === 600) yield* Effect.promise(() => receiver.start())
            }
            // Closing the scope is the shutdown: the final flush delivers everything pending.
          }),
        ).pipe(Effect.provide(sinkLayer()))
        expect(maxPending).toBeLessThanOrEqual(200)
        expect(receiver.state.size).toBe(200)
        for (let n = 0; n < 200; n++) {
          const id = record(`id-${n}`).id
          expect(receiver.state.get(id)?.labels.v).toBe(String(800 + n))
          const versions = (receiver.history.get(id) ?? []).map((r) => Number(r?.labels.v))
          expect(versions).toEqual([...versions].sort((a, b) => a - b))
        }
      }),
  )
})
