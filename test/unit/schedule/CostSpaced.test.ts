/**
 * Cost-spaced repetition under the TestClock: runs start an interval apart, and a run that took
 * long pushes the next one out to `factor` times its duration.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, TestClock } from "effect"
import * as CostSpaced from "../../../src/schedule/CostSpaced.js"

describe("CostSpaced", () => {
  it.effect("runs every interval while runs are cheap, and pauses factor times a slow run", () =>
    Effect.gen(function* () {
      // Seconds each run takes, in order: cheap, slow (2 s), cheap again.
      const costs = [0, 0, 2, 0, 0]
      const started: Array<number> = []
      const run = Effect.gen(function* () {
        started.push((yield* Clock.currentTimeMillis) / 1000)
        yield* Effect.sleep(Duration.seconds(costs[started.length - 1] ?? 0))
      })
      const fiber = yield* Effect.fork(CostSpaced.repeat(run, { interval: Duration.seconds(5), factor: 10 }))
      yield* TestClock.adjust(Duration.seconds(60))
      yield* Fiber.interrupt(fiber)
      // 5, 10, 15 (takes 2 s, ends at 17), then 20 s after it ends: 37, then 42.
      expect(started.slice(0, 5)).toEqual([5, 10, 15, 37, 42])
    }),
  )
})
