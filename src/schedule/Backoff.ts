/**
 * The one backoff every retry in the controller uses: exponential from `initial`, capped at `max`,
 * jittered so that many watches (or replicas) failing together do not retry in step.
 */
import { type Duration, Schedule } from "effect"

export interface BackoffOptions {
  readonly initial: Duration.DurationInput
  readonly max: Duration.DurationInput
  /** On by default; off where a test needs exact delays. */
  readonly jitter?: boolean | undefined
}

/** Each delay is scaled by a random factor in this range (Effect's default for `jittered`). */
export const JITTER = { min: 0.8, max: 1.2 } as const

export const exponential = (options: BackoffOptions): Schedule.Schedule<unknown> => {
  const capped = Schedule.exponential(options.initial).pipe(Schedule.union(Schedule.spaced(options.max)))
  return options.jitter === false ? capped : Schedule.jitteredWith(capped, JITTER)
}
