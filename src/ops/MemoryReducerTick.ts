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
 * GC for memory: that cost 30-70 % more CPU until an initial sync was delivered (BENCHMARKS.md).
 */
import * as vm from "node:vm"
import { Duration, Effect, Layer, Schedule, type Scope } from "effect"

/** Short enough that the decayed rate never reaches zero between ticks (measured at 30 s). */
export const defaultInterval: Duration.Duration = Duration.seconds(30)

/** One tick: the smallest script there is, compiled and dropped. */
export const tick: Effect.Effect<void> = Effect.sync(() => {
  new vm.Script("0")
})

/**
 * Runs `run` at once and then every `interval`, as a fiber of the enclosing scope. The effect is a
 * parameter so that a test can count the ticks under `TestClock`.
 */
export const make = (options?: {
  readonly interval?: Duration.DurationInput
  readonly run?: Effect.Effect<void>
}): Effect.Effect<void, never, Scope.Scope> =>
  (options?.run ?? tick).pipe(
    Effect.repeat(Schedule.spaced(options?.interval ?? defaultInterval)),
    Effect.asVoid,
    Effect.forkScoped,
    Effect.asVoid,
  )

/** The tick for as long as the layer lives. */
export const layer: Layer.Layer<never> = Layer.scopedDiscard(make())
