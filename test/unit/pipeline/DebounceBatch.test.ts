import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Queue, Ref, Stream, TestClock } from "effect"
import * as DebounceBatch from "../../../src/pipeline/DebounceBatch.js"
import { instanceCodec } from "../../../src/pipeline/KeyedCodec.js"
import type { Change } from "../../../src/record/Change.js"
import { idOf } from "../../../src/record/Change.js"
import { payloadBytes } from "../../../src/record/Payload.js"
import { record, remove, upsert } from "../fixtures.js"

interface Emitted {
  readonly at: number
  readonly batch: ReadonlyArray<Change>
}

const defaults: DebounceBatch.CoalescerOptions = {
  debounceWindowMs: 1_000,
  debounceMaxWaitMs: 60_000,
  batchFlushIntervalMs: 0,
  batchMaxSize: 50,
}

/** The production operator over fresh keyed state for instance changes. */
const debounceBatch =
  (options: DebounceBatch.CoalescerOptions) =>
  <E, R>(changes: Stream.Stream<Change, E, R>) =>
    Stream.unwrap(
      Effect.map(DebounceBatch.make(options, instanceCodec), (keyed) =>
        DebounceBatch.debounceBatch(keyed)(changes),
      ),
    )

/** Feeds changes into `debounceBatch` and records every batch with the virtual time it left at. */
const setup = (options: Partial<DebounceBatch.CoalescerOptions> = {}) =>
  Effect.gen(function* () {
    const input = yield* Queue.unbounded<Change>()
    const emitted = yield* Ref.make<ReadonlyArray<Emitted>>([])
    yield* Stream.fromQueue(input).pipe(
      debounceBatch({ ...defaults, ...options }),
      Stream.runForEach((batch) =>
        Effect.flatMap(Clock.currentTimeMillis, (at) =>
          Ref.update(emitted, (all) => [...all, { at, batch }]),
        ),
      ),
      Effect.forkScoped,
    )
    /**
     * Waits until every fiber the test started is suspended (waiting on the clock, a queue or a
     * deferred) or done, without moving the clock: TestClock.adjust awaits exactly that before it
     * moves time. A guarantee, where a fixed number of yields was a guess.
     */
    const settle = TestClock.adjust(0)
    const offer = (...changes: ReadonlyArray<Change>) =>
      Effect.zipRight(Queue.offerAll(input, changes), settle)
    const advanceTo = (ms: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => TestClock.adjust(ms - now)).pipe(
        Effect.zipRight(settle),
      )
    const batches = Ref.get(emitted)
    const ids = Effect.map(batches, (all) => all.map((e) => e.batch.map(idOf)))
    return { offer, advanceTo, batches, ids }
  })

describe("debounceBatch", () => {
  it.scoped("sends an upsert once its id has been quiet for the window, not a millisecond before", () =>
    Effect.gen(function* () {
      const t = yield* setup()
      yield* t.offer(upsert("a"))
      yield* t.advanceTo(999)
      expect(yield* t.batches).toEqual([])
      yield* t.advanceTo(1_000)
      expect(yield* t.batches).toEqual([{ at: 1_000, batch: [upsert("a")] }])
    }),
  )

  it.scoped("a new change resets the quiet window and the last state wins", () =>
    Effect.gen(function* () {
      const t = yield* setup()
      yield* t.offer(upsert("a", { v: "1" }))
      yield* t.advanceTo(500)
      yield* t.offer(upsert("a", { v: "2" }))
      yield* t.advanceTo(1_499)
      expect(yield* t.batches).toEqual([])
      yield* t.advanceTo(1_500)
      expect(yield* t.batches).toEqual([{ at: 1_500, batch: [upsert("a", { v: "2" })] }])
    }),
  )

  it.scoped("an object that never stops changing is still sent at the maximum wait", () =>
    Effect.gen(function* () {
      const t = yield* setup({ debounceMaxWaitMs: 3_000 })
      for (let at = 0; at < 3_000; at += 500) {
        yield* t.advanceTo(at)
        yield* t.offer(upsert("a", { v: String(at) }))
      }
      yield* t.advanceTo(2_999)
      expect(yield* t.batches).toEqual([])
      yield* t.advanceTo(3_000)
      expect(yield* t.batches).toEqual([{ at: 3_000, batch: [upsert("a", { v: "2500" })] }])
      // The next change starts a fresh window.
      yield* t.offer(upsert("a", { v: "later" }))
      yield* t.advanceTo(3_999)
      expect((yield* t.batches).length).toBe(1)
      yield* t.advanceTo(4_000)
      expect((yield* t.batches)[1]).toEqual({ at: 4_000, batch: [upsert("a", { v: "later" })] })
    }),
  )

  it.scoped("a delete is not debounced and cancels the pending upsert of its id", () =>
    Effect.gen(function* () {
      const t = yield* setup({ batchFlushIntervalMs: 5_000 })
      yield* t.offer(upsert("a"))
      yield* t.advanceTo(100)
      expect(yield* t.batches).toEqual([])
      yield* t.offer(remove("a"))
      expect(yield* t.batches).toEqual([{ at: 100, batch: [remove("a")] }])
      yield* t.advanceTo(10_000)
      expect((yield* t.batches).length).toBe(1)
    }),
  )

  it.scoped("deletes arriving together share one request", () =>
    Effect.gen(function* () {
      const t = yield* setup()
      const names = Array.from({ length: 30 }, (_, i) => `gone-${i}`)
      yield* t.offer(...names.map(remove))
      expect(yield* t.ids).toEqual([names.map((name) => record(name).id)])
    }),
  )

  it.scoped("an object re-created after its delete is sent again after the window", () =>
    Effect.gen(function* () {
      const t = yield* setup()
      yield* t.offer(upsert("a", { gen: "1" }))
      yield* t.advanceTo(1_000)
      yield* t.advanceTo(2_000)
      yield* t.offer(remove("a"))
      yield* t.advanceTo(2_001)
      yield* t.offer(upsert("a", { gen: "1" }))
      yield* t.advanceTo(3_000)
      expect((yield* t.batches).length).toBe(2)
      yield* t.advanceTo(3_001)
      expect(yield* t.batches).toEqual([
        { at: 1_000, batch: [upsert("a", { gen: "1" })] },
        { at: 2_000, batch: [remove("a")] },
        { at: 3_001, batch: [upsert("a", { gen: "1" })] },
      ])
    }),
  )

  it.scoped("an update that leaves the record unchanged sends nothing", () =>
    Effect.gen(function* () {
      const t = yield* setup()
      yield* t.offer(upsert("a", { v: "1" }))
      yield* t.advanceTo(1_000)
      expect((yield* t.batches).length).toBe(1)
      yield* t.offer(upsert("a", { v: "1" }))
      yield* t.advanceTo(5_000)
      expect((yield* t.batches).length).toBe(1)
      // Changing and changing back before the window ends is no change either.
      yield* t.offer(upsert("a", { v: "2" }))
      yield* t.advanceTo(5_500)
      yield* t.offer(upsert("a", { v: "1" }))
      yield* t.advanceTo(10_000)
      expect((yield* t.batches).length).toBe(1)
      yield* t.offer(upsert("a", { v: "3" }))
      yield* t.advanceTo(11_000)
      expect((yield* t.batches).map((e) => e.batch)).toEqual([
        [upsert("a", { v: "1" })],
        [upsert("a", { v: "3" })],
      ])
    }),
  )

  it.scoped("caps batches at the maximum size: 120 ripe entries leave as 50, 50 and 20", () =>
    Effect.gen(function* () {
      const t = yield* setup({ batchFlushIntervalMs: 5_000 })
      yield* t.offer(...Array.from({ length: 120 }, (_, i) => upsert(`cm-${i}`)))
      yield* t.advanceTo(999)
      expect(yield* t.batches).toEqual([])
      yield* t.advanceTo(1_000)
      // Two full batches go at once; the remainder waits for company up to the flush interval.
      expect((yield* t.batches).map((e) => [e.at, e.batch.length])).toEqual([
        [1_000, 50],
        [1_000, 50],
      ])
      yield* t.advanceTo(5_999)
      expect((yield* t.batches).length).toBe(2)
      yield* t.advanceTo(6_000)
      expect((yield* t.batches).map((e) => [e.at, e.batch.length])).toEqual([
        [1_000, 50],
        [1_000, 50],
        [6_000, 20],
      ])
      const all = (yield* t.ids).flat()
      expect(new Set(all).size).toBe(120)
    }),
  )

  it.scoped("caps batches by bytes: entries that fill a request leave at once, none over the cap", () =>
    Effect.gen(function* () {
      const changes = Array.from({ length: 10 }, (_, i) => upsert(`cm-${i}`, { blob: "x".repeat(10_000) }))
      const one = instanceCodec.measure(changes[0]!).size
      const cap = payloadBytes(4 * one, 4, 0) + one - 1 // room for four, not five
      const t = yield* setup({ batchFlushIntervalMs: 5_000, batchMaxBytes: cap })
      yield* t.offer(...changes)
      yield* t.advanceTo(1_000)
      expect((yield* t.batches).map((e) => [e.at, e.batch.length])).toEqual([
        [1_000, 4],
        [1_000, 4],
      ])
      // The remaining two fill no request: they wait for company up to the flush interval.
      yield* t.advanceTo(5_999)
      expect((yield* t.batches).length).toBe(2)
      yield* t.advanceTo(6_000)
      expect((yield* t.batches).map((e) => [e.at, e.batch.length])).toEqual([
        [1_000, 4],
        [1_000, 4],
        [6_000, 2],
      ])
      expect(new Set((yield* t.ids).flat()).size).toBe(10)
    }),
  )

  it.scoped("an entry larger than the byte cap leaves alone, as soon as it is ripe", () =>
    Effect.gen(function* () {
      const t = yield* setup({ batchFlushIntervalMs: 5_000, batchMaxBytes: 4_096 })
      yield* t.offer(upsert("small"), upsert("huge", { blob: "x".repeat(10_000) }))
      yield* t.advanceTo(1_000)
      expect(yield* t.ids).toEqual([[record("small").id], [record("huge").id]])
    }),
  )

  it.scoped("a ripe entry waits at most the flush interval for company", () =>
    Effect.gen(function* () {
      const t = yield* setup({ batchFlushIntervalMs: 500 })
      yield* t.offer(upsert("a"))
      yield* t.advanceTo(800)
      yield* t.offer(upsert("b"))
      yield* t.advanceTo(1_499)
      expect(yield* t.batches).toEqual([])
      yield* t.advanceTo(1_500)
      // b ripened at 1,800 and is not yet due: only a leaves, b waits for its own interval.
      expect(yield* t.ids).toEqual([[record("a").id]])
      yield* t.advanceTo(2_299)
      expect((yield* t.batches).length).toBe(1)
      yield* t.advanceTo(2_300)
      expect(yield* t.ids).toEqual([[record("a").id], [record("b").id]])
    }),
  )

  it.scoped("when the input ends, everything pending leaves at once, ripe or not", () =>
    Effect.gen(function* () {
      const batches = yield* Stream.make(upsert("a"), upsert("b"), remove("c")).pipe(
        debounceBatch({ ...defaults, debounceWindowMs: 60_000 }),
        Stream.runCollect,
      )
      // The delete left as soon as it arrived; the rest on the end of input, with the virtual
      // clock never moved (under TestClock, waiting for the window would never finish).
      expect([...batches]).toEqual([[remove("c")], [upsert("a"), upsert("b")]])
      expect(yield* Clock.currentTimeMillis).toBe(0)
    }),
  )

  it.effect("an upstream failure fails the stream", () =>
    Effect.gen(function* () {
      const result = yield* Stream.concat(Stream.make(upsert("a")), Stream.fail("boom")).pipe(
        debounceBatch(defaults),
        Stream.runCollect,
        Effect.flip,
      )
      expect(result).toBe("boom")
    }),
  )
})
