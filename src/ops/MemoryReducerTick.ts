/**
 * Lets V8's memory reducer give back the heap that a large initial sync grew.
 *
 * V8 shrinks an idle heap when its memory reducer, polling every 8 s, sees low allocation rates:
 * young generation, old generation and the embedder's C++ heap (cppgc). Since V8 13.1 (Node 24;
 * V8 change 5935313) those rates are decaying averages without a floor, and a rate of exactly zero
 * counts as the highest. A process that allocates nothing on cppgc, as this controller does not,
 * has exactly zero there and never looks idle: `--trace-memory-reducer` says "high alloc" every
 * 8 s and the heap grown by a sync of 100,000 objects stays committed (BENCHMARKS.md, "Memory";
 * upstream: V8 issue 570738027, nodejs/node#66564).
 *
 * Node allocates on cppgc when it compiles a `vm.Script`. One compile gives the rate a positive
 * value, which then decays and underflows back to zero after a long idle spell, so the tick
 * repeats. On Node 20 it is harmless: a few microseconds every 30 s.
 *
 * It replaces `node --memory-saver-mode`, which gives the memory back too, but by optimising every
 * GC for memory: that cost up to 78 % more CPU until an initial sync was delivered (BENCHMARKS.md).
 */
import * as vm from "node:vm"
import { Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { SyncPipeline } from "../pipeline/Pipeline.js"
import { Watchers } from "../watch/Watchers.js"

/** Short enough that the decayed rate never reaches zero between ticks (measured at 30 s). */
export const defaultInterval: Duration.Duration = Duration.seconds(30)

/** One tick: the smallest script there is, compiled and dropped. */
export const tick: Effect.Effect<void> = Effect.sync(() => {
  new vm.Script("0")
})

/**
 * Runs `run` every `interval`, the first time once `after` has completed, as a fiber of the
 * enclosing scope. The effects are parameters so that a test can count the ticks under `TestClock`.
 */
export const make = <R = never>(options?: {
  readonly interval?: Duration.DurationInput
  readonly run?: Effect.Effect<void>
  readonly after?: Effect.Effect<void, never, R>
}): Effect.Effect<void, never, Scope.Scope | R> =>
  (options?.after ?? Effect.void).pipe(
    Effect.zipRight(
      (options?.run ?? tick).pipe(Effect.repeat(Schedule.spaced(options?.interval ?? defaultInterval))),
    ),
    Effect.asVoid,
    Effect.forkScoped,
    Effect.asVoid,
  )

/**
 * Completes once the initial lists are complete and everything they produced has been handed over,
 * or after `limit` (a receiver that is down keeps records pending for as long as it is down).
 */
export const initialSyncDelivered = (
  limit: Duration.DurationInput = Duration.minutes(5),
): Effect.Effect<void, never, Watchers | SyncPipeline> =>
  Effect.gen(function* () {
    const watchers = yield* Watchers
    const pipeline = yield* SyncPipeline
    const delivered = Effect.zipWith(
      watchers.ready,
      pipeline.pending,
      (ready, pending) => ready && pending === 0,
    )
    yield* Effect.repeat(delivered, { until: (done) => done, schedule: Schedule.spaced(Duration.seconds(1)) })
  }).pipe(Effect.timeoutOption(limit), Effect.asVoid)

/**
 * The tick for as long as the layer lives, from the end of the initial sync on. Until the first
 * tick the reducer cannot run (its embedder rate is exactly zero), so it stays armed through the
 * sync; once run it rests until the heap has grown by 10 MiB and 10 % again, which the deliveries
 * after the debounce window would not do, and the heap they grew would stay committed.
 */
export const layer: Layer.Layer<never, never, Watchers | SyncPipeline> = Layer.scopedDiscard(
  make({ after: initialSyncDelivered() }),
)
