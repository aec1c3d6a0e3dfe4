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

export const exponential = (options: BackoffOptions): Schedule.Schedule<unknown> => {
  const capped = Schedule.exponential(options.initial).pipe(Schedule.union(Schedule.spaced(options.max)))
  return options.jitter === false ? capped : Schedule.jittered(capped)
}
