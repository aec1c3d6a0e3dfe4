/**
 * The memory reducer's tick under the TestClock: once `after` completes (at start without it), then
 * every interval, and no more once its scope closes (the controller's shutdown must not wait for it).
 */
import * as v8 from "node:v8"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Scope, TestClock } from "effect"
import * as MemoryReducerTick from "../../../src/ops/MemoryReducerTick.js"

/** The seconds at which the ticks ran while the scope was open for `open`, and for `after` more. */
const tickTimes = (open: number, after: Effect.Effect<void> = Effect.void) =>
  Effect.gen(function* () {
    const ticks: Array<number> = []
    const run = Effect.map(Clock.currentTimeMillis, (now) => {
      ticks.push(now / 1000)
    })
    const scope = yield* Scope.make()
    yield* Scope.extend(MemoryReducerTick.make({ run, after }), scope)
    yield* TestClock.adjust(Duration.seconds(open))
    yield* Scope.close(scope, Exit.void)
    yield* TestClock.adjust(Duration.seconds(60))
    return ticks
  })

describe("MemoryReducerTick", () => {
  it.effect("ticks at start and every interval while its scope is open", () =>
    Effect.map(tickTimes(95), (ticks) => expect(ticks).toEqual([0, 30, 60, 90])),
  )

  it.effect("starts ticking once `after` has completed", () =>
    Effect.map(tickTimes(100, Effect.sleep(Duration.seconds(45))), (ticks) =>
      expect(ticks).toEqual([45, 75]),
    ),
  )

  it.effect("allocates on the C++ heap, which V8 reads for the embedder's allocation rate", () =>
    Effect.gen(function* () {
      const major = Number(process.versions.node.split(".")[0])
      const cppHeap = (v8 as { getCppHeapStatistics?: (level: "detailed") => { used_size_bytes: number } })
        .getCppHeapStatistics
      // Node 24 is what the image runs and what CI tests on; Node 20 has no such statistics (and no
      // such reducer), where the tick must only be harmless.
      if (major < 24) return yield* MemoryReducerTick.tick
      expect(cppHeap).toBeTypeOf("function")
      const before = cppHeap!("detailed").used_size_bytes
      yield* MemoryReducerTick.tick
      expect(cppHeap!("detailed").used_size_bytes).toBeGreaterThan(before)
    }),
  )
})
