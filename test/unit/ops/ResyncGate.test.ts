/**
 * The resync gate under the TestClock: one resync at a time (callers join the running one), and a
 * request starts one at most once per minimum interval, otherwise it is refused with the time left.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Option, Queue, Ref, TestClock } from "effect"
import { make, ResyncRateLimited, waitBeforeStart } from "../../../src/ops/ResyncGate.js"

/** A gate whose task counts its runs and finishes when the test says so (one `finish` per run). */
const gate = (minInterval: Duration.DurationInput) =>
  Effect.gen(function* () {
    const runs = yield* Ref.make(0)
    const releases = yield* Queue.unbounded<void>()
    const task = Effect.gen(function* () {
      const n = yield* Ref.updateAndGet(runs, (r) => r + 1)
      yield* Queue.take(releases)
      return n
    })
    const g = yield* make(task, Duration.decode(minInterval))
    return { ...g, runs: Ref.get(runs), finish: Queue.offer(releases, undefined) }
  })

describe("waitBeforeStart", () => {
  it("is zero before any start, and the rest of the interval after one", () => {
    const minute = Duration.minutes(1)
    expect(waitBeforeStart(Option.none(), 5_000, minute)).toBe(0)
    expect(waitBeforeStart(Option.some(1_000), 1_000, minute)).toBe(60_000)
    expect(waitBeforeStart(Option.some(1_000), 31_000, minute)).toBe(30_000)
    expect(waitBeforeStart(Option.some(1_000), 61_000, minute)).toBe(0)
    expect(waitBeforeStart(Option.some(1_000), 1_000, Duration.zero)).toBe(0)
  })
})

describe("ResyncGate", () => {
  it.scoped("a request while one runs joins it: one run, the same answer for both", () =>
    Effect.gen(function* () {
      const g = yield* gate("1 minute")
      const first = yield* Effect.fork(g.request)
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(g.request)
      yield* Effect.yieldNow()
      yield* g.finish
      expect(yield* Fiber.join(first)).toBe(1)
      expect(yield* Fiber.join(second)).toBe(1)
      expect(yield* g.runs).toBe(1)
    }),
  )

  it.scoped(
    "a request within the interval after one ended is refused with the time left; after it, it starts",
    () =>
      Effect.gen(function* () {
        const g = yield* gate("1 minute")
        const first = yield* Effect.fork(g.request)
        yield* TestClock.adjust("10 seconds")
        yield* g.finish
        expect(yield* Fiber.join(first)).toBe(1)

        yield* TestClock.adjust("20 seconds") // 20 s after the start
        const refused = yield* Effect.either(g.request)
        expect(Either.isLeft(refused)).toBe(true)
        const error = Either.getLeft(refused).pipe(Option.getOrThrow)
        expect(error).toBeInstanceOf(ResyncRateLimited)
        expect(Duration.toMillis(error.retryAfter)).toBe(30_000)
        expect(yield* g.runs).toBe(1)

        yield* TestClock.adjust("29999 millis")
        expect(Either.isLeft(yield* Effect.either(g.request))).toBe(true)
        yield* TestClock.adjust("1 millis")
        const third = yield* Effect.fork(g.request)
        yield* Effect.yieldNow()
        yield* g.finish
        expect(yield* Fiber.join(third)).toBe(2)
      }),
  )

  it.scoped("run (the periodic resync) is never refused, and counts as a start for requests", () =>
    Effect.gen(function* () {
      const g = yield* gate("1 minute")
      for (const expected of [1, 2]) {
        const periodic = yield* Effect.fork(g.run)
        yield* Effect.yieldNow()
        yield* g.finish
        expect(yield* Fiber.join(periodic)).toBe(expected)
      }
      yield* TestClock.adjust("59 seconds")
      const refused = yield* Effect.flip(g.request)
      expect(Duration.toSeconds(refused.retryAfter)).toBe(1)
    }),
  )

  it.scoped("a zero interval limits nothing but the running one", () =>
    Effect.gen(function* () {
      const g = yield* gate(Duration.zero)
      for (const expected of [1, 2, 3]) {
        const fiber = yield* Effect.fork(g.request)
        yield* Effect.yieldNow()
        yield* g.finish
        expect(yield* Fiber.join(fiber)).toBe(expected)
      }
    }),
  )

  it.scoped("a caller that goes away does not abort the resync the others wait for", () =>
    Effect.gen(function* () {
      const g = yield* gate("1 minute")
      const leaving = yield* Effect.fork(g.request)
      yield* Effect.yieldNow()
      const staying = yield* Effect.fork(g.request)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(leaving)
      yield* g.finish
      expect(yield* Fiber.join(staying)).toBe(1)
    }),
  )
})
