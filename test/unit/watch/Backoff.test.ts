/**
 * The backoff combinator under the TestClock: when the unfold's next step runs after an error
 * item, what a fixed pause and a Retry-After add, and that only a healthy period resets the delays.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Duration, Effect, Fiber, Option, Stream, TestClock } from "effect"
import * as ScheduleBackoff from "../../../src/schedule/Backoff.js"
import { backoff, fixed, unfoldPaced } from "../../../src/watch/Backoff.js"

/** An item; `run` is how long the upstream works before emitting it (a watch staying up). */
type Item = { readonly error?: "backoff" | "forbidden" | number; readonly run?: number }

/** Steps through `items`, one per step; `times` gets when (in seconds) each step emitted. */
const stepper =
  (items: ReadonlyArray<Item>, times: Array<number> = []) =>
  (i: number) =>
    i >= items.length
      ? Effect.succeed(Option.none())
      : Effect.gen(function* () {
          const item = items[i]!
          if (item.run !== undefined) yield* Effect.sleep(Duration.seconds(item.run))
          times.push((yield* Clock.currentTimeMillis) / 1000)
          return Option.some([Chunk.of(item), i + 1] as const)
        })

/** Unfolds `items` through the combinator; returns when (in seconds) each step emitted its item. */
const emittedAt = (items: ReadonlyArray<Item>, healthyAfter = 30) =>
  Effect.gen(function* () {
    const times: Array<number> = []
    const fiber = yield* unfoldPaced(0, stepper(items, times), {
      schedule: ScheduleBackoff.exponential({ initial: "1 second", max: "30 seconds", jitter: false }),
      healthyAfter: Duration.seconds(healthyAfter),
      pauseOf: (item: Item) =>
        item.error === undefined
          ? undefined
          : item.error === "forbidden"
            ? fixed("5 minutes")
            : item.error === "backoff"
              ? backoff()
              : backoff(Duration.seconds(item.error)),
    }).pipe(Stream.runCollect, Effect.fork)
    yield* TestClock.adjust("1 hour")
    const collected = yield* Fiber.join(fiber)
    expect(collected.length).toBe(items.length)
    return times.map((t) => t - times[0]!)
  })

const err: Item = { error: "backoff" }
const ok: Item = {}

describe("unfoldPaced", () => {
  it.effect("steps whose items are not errors follow at once", () =>
    Effect.gen(function* () {
      expect(yield* emittedAt([ok, ok, ok])).toEqual([0, 0, 0])
    }),
  )

  it.effect("each error delays the next step, doubling up to the cap", () =>
    Effect.gen(function* () {
      const times = yield* emittedAt([err, err, err, err, err, err, err, ok])
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      expect(gaps).toEqual([1, 2, 4, 8, 16, 30, 30])
    }),
  )

  it.effect("the error goes downstream before the wait, not after it", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      const fiber = yield* unfoldPaced(0, stepper([err, ok]), {
        schedule: ScheduleBackoff.exponential({ initial: "1 second", max: "30 seconds", jitter: false }),
        healthyAfter: "30 seconds",
        pauseOf: (item: Item) => (item.error === undefined ? undefined : backoff()),
      }).pipe(
        Stream.runForEach(() =>
          Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => seen.push(t))),
        ),
        Effect.fork,
      )
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      expect(seen).toEqual([0, 1000])
    }),
  )

  it.effect("a fixed pause (forbidden) waits its delay and leaves the schedule where it was", () =>
    Effect.gen(function* () {
      const times = yield* emittedAt([err, err, { error: "forbidden" }, err, ok])
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      expect(gaps).toEqual([1, 2, 300, 4])
    }),
  )

  it.effect("Retry-After is waited on top of the backoff", () =>
    Effect.gen(function* () {
      const times = yield* emittedAt([{ error: 10 }, ok])
      expect(times).toEqual([0, 11])
    }),
  )

  it.effect(
    "a healthy period (running that long since the last wait) resets the delays; a shorter one does not",
    () =>
      Effect.gen(function* () {
        const healthy = yield* emittedAt([err, err, err, { error: "backoff", run: 30 }, ok])
        // waits 1, 2, 4; then 30 s up, the error: back to 1
        expect(healthy).toEqual([0, 1, 3, 37, 38])
        const unhealthy = yield* emittedAt([err, err, err, { error: "backoff", run: 29 }, ok])
        // waits 1, 2, 4; 29 s up is not enough: 8
        expect(unhealthy).toEqual([0, 1, 3, 36, 44])
      }),
  )

  it.effect("the waits themselves do not count as healthy time", () =>
    Effect.gen(function* () {
      const times = yield* emittedAt([err, err, err, err, err, err, err, err, ok])
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      expect(gaps).toEqual([1, 2, 4, 8, 16, 30, 30, 30])
    }),
  )
})
