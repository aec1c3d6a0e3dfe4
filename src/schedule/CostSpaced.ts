/**
 * Periodic work whose cost grows with its input: run every `interval`, and after a run that took
 * long, pause at least `factor` times as long as it took, so the work stays a bounded share of
 * the time however large its input grows.
 */
import { Duration, Effect, Ref, Schedule } from "effect"

export interface CostSpacedOptions {
  /** Shortest pause between two runs; also the wait before the first. */
  readonly interval: Duration.DurationInput
  /** The pause after a run is at least this many times what the run took. */
  readonly factor: number
}

/** Runs `effect` for ever (until it fails or is interrupted), spaced as above. */
export const repeat = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: CostSpacedOptions,
): Effect.Effect<never, E, R> =>
  Effect.gen(function* () {
    const interval = Duration.decode(options.interval)
    const lastRun = yield* Ref.make(Duration.zero)
    const spacing = Schedule.spaced(interval).pipe(
      Schedule.modifyDelayEffect((_, delay) =>
        Effect.map(Ref.get(lastRun), (took) => Duration.max(delay, Duration.times(took, options.factor))),
      ),
    )
    yield* Effect.sleep(interval)
    yield* Effect.timed(effect).pipe(
      Effect.flatMap(([took]) => Ref.set(lastRun, took)),
      Effect.repeat(spacing),
    )
    return yield* Effect.never
  })
