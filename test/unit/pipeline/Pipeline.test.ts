import { describe, expect, it } from "@effect/vitest"
import {
  Clock,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberId,
  Layer,
  Metric,
  Queue,
  Ref,
  Scope,
  Stream,
  SubscriptionRef,
  TestClock,
} from "effect"
import { Leadership, LeadershipExpiry } from "../../../src/leader/Leadership.js"
import * as Metrics from "../../../src/metrics/Metrics.js"
import * as Pipeline from "../../../src/pipeline/Pipeline.js"
import type { Change } from "../../../src/record/Change.js"
import type { SyncPayload } from "../../../src/record/Payload.js"
import { InstanceSink, SinkRejected, SinkUnavailable } from "../../../src/sink/Sink.js"
import { record, remove, upsert } from "../fixtures.js"

const options: Pipeline.PipelineOptions = {
  debounceWindowMs: 10_000,
  debounceMaxWaitMs: 60_000,
  batchFlushIntervalMs: 0,
  batchMaxSize: 50,
  shutdownTimeout: Duration.seconds(20),
  retryInitialBackoff: Duration.seconds(1),
  retryMaxBackoff: Duration.seconds(30),
}

interface Received {
  readonly at: number
  readonly payload: SyncPayload
}

/**
 * A sink that records what it is given and answers with whatever `respond` decides, so tests
 * control the receiver's mood per payload.
 */
const recordingSink = (
  respond: (payload: SyncPayload, attempt: number) => Effect.Effect<void, SinkUnavailable | SinkRejected>,
) =>
  Effect.gen(function* () {
    const received = yield* Ref.make<ReadonlyArray<Received>>([])
    const attempts = yield* Ref.make(0)
    const attemptedAt = yield* Ref.make<ReadonlyArray<number>>([])
    const layer = Layer.succeed(
      InstanceSink,
      InstanceSink.make((payload) =>
        Effect.gen(function* () {
          const attempt = yield* Ref.getAndUpdate(attempts, (n) => n + 1)
          const now = yield* Clock.currentTimeMillis
          yield* Ref.update(attemptedAt, (all) => [...all, now])
          yield* respond(payload, attempt)
          const at = yield* Clock.currentTimeMillis
          yield* Ref.update(received, (all) => [...all, { at, payload }])
        }),
      ),
    )
    return {
      layer,
      received: Ref.get(received),
      attempts: Ref.get(attempts),
      /** The clock time of every attempt, in order. */
      attemptedAt: Ref.get(attemptedAt),
    }
  })

/**
 * Waits until every fiber the test started is suspended (waiting on the clock, a queue or a
 * deferred) or done, without moving the clock: TestClock.adjust awaits exactly that before it
 * moves time. A guarantee, where a fixed number of yields was a guess.
 */
const settle = TestClock.adjust(0)

/** A pipeline fed the way production feeds it: through a queue of network reads. */
const started = (opts: Pipeline.PipelineOptions) =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<ReadonlyArray<Change>>()
    const pipeline = yield* Pipeline.make(opts, Pipeline.fromChangeQueue(queue))
    return { ...pipeline, offer: (change: Change) => Queue.offer(queue, [change]) }
  })

describe("Pipeline", () => {
  it.effect("interruption flushes everything pending, including entries inside their debounce window", () =>
    Effect.gen(function* () {
      const sink = yield* recordingSink(() => Effect.void)
      const scope = yield* Scope.make()
      const pipeline = yield* started(options).pipe(Scope.extend(scope), Effect.provide(sink.layer))
      yield* pipeline.offer(upsert("ripe"))
      yield* TestClock.adjust(10_000)
      yield* settle
      yield* pipeline.offer(upsert("unripe"))
      yield* TestClock.adjust(1)
      yield* settle
      expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.name))).toEqual([["ripe"]])
      yield* Scope.close(scope, Exit.interrupt(FiberId.none))
      expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.name))).toEqual([
        ["ripe"],
        ["unripe"],
      ])
      expect(yield* pipeline.pending).toBe(0)
    }),
  )

  it.effect("run: interrupting the fiber flushes what the stream produced", () =>
    Effect.gen(function* () {
      const sink = yield* recordingSink(() => Effect.void)
      const fiber = yield* Stream.concat(Stream.make(upsert("a"), remove("b")), Stream.never).pipe(
        (changes) => Pipeline.run(changes, options),
        Effect.provide(sink.layer),
        Effect.fork,
      )
      yield* settle
      yield* Fiber.interrupt(fiber)
      const received = yield* sink.received
      expect(received.flatMap((r) => r.payload.deletes)).toEqual([record("b").id])
      expect(received.flatMap((r) => r.payload.upserts)).toEqual([record("a")])
    }),
  )

  it.effect("retries a transient failure with backoff and delivers once", () =>
    Effect.gen(function* () {
      const sink = yield* recordingSink((_, attempt) =>
        attempt < 2 ? Effect.fail(new SinkUnavailable({ reason: "503", status: 503 })) : Effect.void,
      )
      const fiber = yield* Pipeline.run(Stream.make(upsert("a")), { ...options, debounceWindowMs: 0 }).pipe(
        Effect.provide(sink.layer),
        Effect.fork,
      )
      yield* TestClock.adjust(60_000)
      yield* Fiber.join(fiber)
      // Backoff starts at a second, jittered by at most ±20%, and doubles.
      const [first, second, third, ...more] = yield* sink.attemptedAt
      expect(more).toEqual([])
      expect(first).toBe(0)
      expect(second! - first!).toBeGreaterThanOrEqual(800)
      expect(second! - first!).toBeLessThanOrEqual(1_200)
      expect(third! - second!).toBeGreaterThanOrEqual(1_600)
      expect(third! - second!).toBeLessThanOrEqual(2_400)
      expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.name))).toEqual([["a"]])
    }),
  )

  it.effect("waits at least as long as Retry-After asks", () =>
    Effect.gen(function* () {
      const sink = yield* recordingSink((_, attempt) =>
        attempt === 0
          ? Effect.fail(new SinkUnavailable({ reason: "429", status: 429, retryAfter: Duration.seconds(7) }))
          : Effect.void,
      )
      const fiber = yield* Pipeline.run(Stream.make(upsert("a")), { ...options, debounceWindowMs: 0 }).pipe(
        Effect.provide(sink.layer),
        Effect.fork,
      )
      yield* TestClock.adjust(60_000)
      yield* Fiber.join(fiber)
      // Seven seconds, not the backoff's one: exactly what the receiver asked for.
      expect(yield* sink.attemptedAt).toEqual([0, 7_000])
      expect((yield* sink.received).map((r) => r.at)).toEqual([7_000])
    }),
  )

  it.effect(
    "while the receiver fails, newer states supersede the undelivered ones and never arrive before them",
    () =>
      Effect.gen(function* () {
        const down = yield* Ref.make(true)
        // Each attempt takes a while, so changes keep arriving while a batch is in flight.
        const sink = yield* recordingSink(() =>
          Effect.sleep("2 seconds").pipe(
            Effect.zipRight(Ref.get(down)),
            Effect.flatMap((isDown) =>
              isDown ? Effect.fail(new SinkUnavailable({ reason: "connection refused" })) : Effect.void,
            ),
          ),
        )
        const scope = yield* Scope.make()
        const pipeline = yield* started({ ...options, debounceWindowMs: 100 }).pipe(
          Scope.extend(scope),
          Effect.provide(sink.layer),
        )
        let maxPending = 0
        for (let i = 0; i < 1_000; i++) {
          yield* pipeline.offer(upsert(`id-${i % 200}`, { v: String(i) }))
          maxPending = Math.max(maxPending, yield* pipeline.pending)
          if (i % 50 === 0) {
            yield* TestClock.adjust(250)
            yield* settle
          }
        }
        expect(maxPending).toBeLessThanOrEqual(200)
        expect(yield* sink.received).toEqual([])
        yield* Ref.set(down, false)
        yield* TestClock.adjust(60_000)
        yield* settle
        yield* Scope.close(scope, Exit.void)
        const seen = new Map<string, number>()
        for (const { payload } of yield* sink.received) {
          for (const u of payload.upserts) {
            const v = Number(u.labels.v)
            expect(v).toBeGreaterThan(seen.get(u.name) ?? -1)
            seen.set(u.name, v)
          }
        }
        expect(seen.size).toBe(200)
        for (const [name, v] of seen) expect(v).toBe(800 + Number(name.slice(3)))
      }),
  )

  it.effect("a failed batch does not overwrite a newer state that arrived while it was in flight", () =>
    Effect.gen(function* () {
      const sink = yield* recordingSink((_, attempt) =>
        attempt === 0
          ? Effect.zipRight(
              Effect.sleep("2 seconds"),
              Effect.fail(new SinkUnavailable({ reason: "timeout" })),
            )
          : Effect.void,
      )
      const scope = yield* Scope.make()
      const pipeline = yield* started({ ...options, debounceWindowMs: 0 }).pipe(
        Scope.extend(scope),
        Effect.provide(sink.layer),
      )
      yield* pipeline.offer(upsert("a", { v: "1" }))
      yield* settle
      yield* TestClock.adjust(1_000)
      yield* pipeline.offer(upsert("a", { v: "2" }))
      yield* TestClock.adjust(60_000)
      yield* settle
      yield* Scope.close(scope, Exit.void)
      expect(yield* sink.attempts).toBe(2)
      expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.labels.v))).toEqual([["2"]])
    }),
  )

  it.effect(
    "a permanent rejection splits the batch: the valid entries arrive, the poisoned one is set aside",
    () =>
      Effect.gen(function* () {
        const poisoned = record("poisoned").id
        const sink = yield* recordingSink((payload) =>
          payload.upserts.some((u) => u.id === poisoned)
            ? Effect.fail(new SinkRejected({ status: 400, body: "bad entry" }))
            : Effect.void,
        )
        const changes: Array<Change> = Array.from({ length: 49 }, (_, i) => upsert(`ok-${i}`))
        changes.splice(17, 0, upsert("poisoned"))
        yield* Pipeline.run(Stream.fromIterable(changes), options).pipe(Effect.provide(sink.layer))
        const delivered = (yield* sink.received).flatMap((r) => r.payload.upserts.map((u) => u.name))
        expect(delivered).toHaveLength(49)
        expect(delivered).not.toContain("poisoned")
        expect(new Set(delivered).size).toBe(49)
      }),
  )

  describe("413 Payload Too Large", () => {
    const limit = 50_000
    /** A receiver that refuses bodies over `limit` bytes, as cluster-whisperer does over 5 MiB. */
    const limited = (refusals: Ref.Ref<number>) =>
      recordingSink((payload) =>
        Buffer.byteLength(JSON.stringify(payload)) > limit
          ? Effect.zipRight(
              Ref.update(refusals, (n) => n + 1),
              Effect.fail(new SinkRejected({ status: 413, body: "request entity too large" })),
            )
          : Effect.void,
      )
    const rejected = Metric.value(Metric.tagged(Metrics.rejectedEntries, "pipeline", "instances"))
    // Two of these fit under the limit, three do not.
    const entries = Array.from({ length: 20 }, (_, i) => upsert(`big-${i}`, { blob: "x".repeat(20_000) }))

    it.effect("splits like a 400 until the parts fit, setting nothing aside", () =>
      Effect.gen(function* () {
        const refusals = yield* Ref.make(0)
        const sink = yield* limited(refusals)
        const before = (yield* rejected).count
        yield* Pipeline.run(Stream.fromIterable(entries), options).pipe(Effect.provide(sink.layer))
        expect(yield* Ref.get(refusals)).toBeGreaterThan(0)
        const delivered = (yield* sink.received).flatMap((r) => r.payload.upserts.map((u) => u.name))
        expect(new Set(delivered).size).toBe(20)
        expect((yield* rejected).count - before).toBe(0)
      }),
    )

    it.effect("sets aside only an entry refused alone, and counts it", () =>
      Effect.gen(function* () {
        const refusals = yield* Ref.make(0)
        const sink = yield* limited(refusals)
        const before = (yield* rejected).count
        const changes = [
          ...entries.slice(0, 9),
          upsert("huge", { blob: "x".repeat(60_000) }),
          ...entries.slice(9),
        ]
        yield* Pipeline.run(Stream.fromIterable(changes), options).pipe(Effect.provide(sink.layer))
        const delivered = (yield* sink.received).flatMap((r) => r.payload.upserts.map((u) => u.name))
        expect(new Set(delivered).size).toBe(20)
        expect(delivered).not.toContain("huge")
        expect((yield* rejected).count - before).toBe(1)
      }),
    )

    it.effect("with the byte cap at the receiver's limit, no request draws a 413", () =>
      Effect.gen(function* () {
        const refusals = yield* Ref.make(0)
        const sink = yield* limited(refusals)
        yield* Pipeline.run(Stream.fromIterable(entries), { ...options, batchMaxBytes: limit }).pipe(
          Effect.provide(sink.layer),
        )
        expect(yield* Ref.get(refusals)).toBe(0)
        const received = yield* sink.received
        expect(new Set(received.flatMap((r) => r.payload.upserts.map((u) => u.name))).size).toBe(20)
        expect(received.map((r) => r.payload.upserts.length)).toEqual(Array.from({ length: 10 }, () => 2))
      }),
    )
  })

  it.effect("a delete refused for good is among the ids a resync finds handed over, and goes out again", () =>
    Effect.gen(function* () {
      const refuse = yield* Ref.make(true)
      const gone = record("gone").id
      const sink = yield* recordingSink((payload) =>
        Effect.flatMap(Ref.get(refuse), (refusing) =>
          refusing && payload.deletes.includes(gone)
            ? Effect.fail(new SinkRejected({ status: 400, body: "cannot delete" }))
            : Effect.void,
        ),
      )
      const scope = yield* Scope.make()
      const pipeline = yield* started({ ...options, debounceWindowMs: 0 }).pipe(
        Scope.extend(scope),
        Effect.provide(sink.layer),
      )
      yield* pipeline.offer(upsert("kept"))
      yield* pipeline.offer(remove("gone"))
      yield* settle
      const received = yield* sink.received
      expect(received.flatMap((r) => r.payload.upserts.map((u) => u.name))).toEqual(["kept"])
      expect(received.flatMap((r) => r.payload.deletes)).toEqual([])
      // What Resync does: the ids the receiver may hold that no watch knows are deleted again.
      const handedOver = yield* pipeline.forgetHandedOver
      expect([...handedOver].sort()).toEqual([record("gone").id, record("kept").id].sort())
      yield* Ref.set(refuse, false)
      yield* pipeline.offer(remove("gone"))
      yield* settle
      expect((yield* sink.received).flatMap((r) => r.payload.deletes)).toEqual([gone])
      yield* Scope.close(scope, Exit.void)
    }),
  )

  it.effect(
    "fencing: a deposed leader sends nothing and keeps its changes; leading again, it sends them",
    () =>
      Effect.gen(function* () {
        const sink = yield* recordingSink(() => Effect.void)
        const leadership = yield* SubscriptionRef.make(false)
        const scope = yield* Scope.make()
        const pipeline = yield* started({ ...options, debounceWindowMs: 0 }).pipe(
          Scope.extend(scope),
          Effect.provide(sink.layer),
          Effect.provideService(Leadership, leadership),
        )
        yield* pipeline.offer(upsert("a"))
        yield* TestClock.adjust(60_000)
        yield* settle
        expect(yield* sink.attempts).toBe(0)
        expect(yield* pipeline.pending).toBe(1)
        yield* SubscriptionRef.set(leadership, true)
        yield* TestClock.adjust(60_000)
        yield* settle
        expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.name))).toEqual([["a"]])
        yield* Scope.close(scope, Exit.void)
      }),
  )

  it.effect(
    "fencing by the clock: leadership still published but past its expiry (the elector has not run yet) sends nothing",
    () =>
      Effect.gen(function* () {
        const sink = yield* recordingSink(() => Effect.void)
        // As a process frozen past its renew deadline sees it on waking up: its sender's timer fires
        // before the elector's, which would have turned leadership false.
        const leadership = yield* SubscriptionRef.make(true)
        const expiry = yield* Ref.make(10_000)
        const scope = yield* Scope.make()
        const pipeline = yield* started({ ...options, debounceWindowMs: 20_000 }).pipe(
          Scope.extend(scope),
          Effect.provide(sink.layer),
          Effect.provideService(Leadership, leadership),
          Effect.provideService(LeadershipExpiry, Ref.get(expiry)),
        )
        yield* pipeline.offer(upsert("a"))
        yield* TestClock.adjust(20_000)
        yield* settle
        expect(yield* sink.attempts).toBe(0)
        expect(yield* pipeline.pending).toBe(1)
        // A renewal moves the expiry on: the held change goes out.
        yield* Ref.set(expiry, 1_000_000)
        yield* TestClock.adjust(60_000)
        yield* settle
        expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.name))).toEqual([["a"]])
        yield* Scope.close(scope, Exit.void)
      }),
  )

  it.effect("a delivery cut short by interruption is sent again by the final flush", () =>
    Effect.gen(function* () {
      const sink = yield* recordingSink((_, attempt) => (attempt === 0 ? Effect.never : Effect.void))
      const scope = yield* Scope.make()
      const pipeline = yield* started({ ...options, debounceWindowMs: 0 }).pipe(
        Scope.extend(scope),
        Effect.provide(sink.layer),
      )
      yield* pipeline.offer(upsert("a"))
      yield* settle
      expect(yield* sink.attempts).toBe(1)
      expect(yield* pipeline.pending).toBe(0) // in flight: in no queue at all
      yield* Scope.close(scope, Exit.interrupt(FiberId.none))
      expect(yield* sink.attempts).toBe(2)
      expect((yield* sink.received).map((r) => r.payload.upserts.map((u) => u.name))).toEqual([["a"]])
    }),
  )
})
