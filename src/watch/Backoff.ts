/**
 * Backing off after errors, as a combinator over the step a Stream is unfolded from: the step's
 * items go downstream as they come, and after a step whose items hold an error the next step
 * waits first, so the request that would fail again is not made at once. Errors are items here,
 * not failures: the stream goes on.
 *
 * It paces the step rather than the finished Stream because at a thousand watched types a stream
 * stage per type (a channel of its own between the watch and its reader) costs heap and a hop per
 * network read for nothing: the step already knows when it failed.
 *
 * The delay is the next of `schedule` (see `schedule/Backoff.ts`), plus whatever the error asks
 * for on top (a Retry-After), or a fixed delay that leaves the schedule alone (a 403 is retried
 * rarely whatever the backoff says). The schedule starts again from its first delay only once the
 * stream has run `healthyAfter` since its last wait without an error: a watch that drops after
 * every event must not be retried every second for ever.
 */
import { type Chunk, Clock, Duration, Effect, Option, Schedule, Stream } from "effect"

/** What an item asks for before the next step. */
export type Pause =
  /** The schedule's next delay, plus `extra`. */
  | { readonly _tag: "Backoff"; readonly extra: Duration.Duration }
  /** A fixed delay; the schedule is neither advanced nor reset. */
  | { readonly _tag: "Fixed"; readonly delay: Duration.Duration }

export const backoff = (extra: Duration.DurationInput = Duration.zero): Pause => ({
  _tag: "Backoff",
  extra: Duration.decode(extra),
})
export const fixed = (delay: Duration.DurationInput): Pause => ({
  _tag: "Fixed",
  delay: Duration.decode(delay),
})

export interface BackoffOptions<A> {
  readonly schedule: Schedule.Schedule<unknown>
  /** Running this long without an error resets the schedule. */
  readonly healthyAfter: Duration.DurationInput
  /** The pause an item asks for; `undefined` for items that are not errors. */
  readonly pauseOf: (item: A) => Pause | undefined
}

/** One step of an unfold: the next chunk and state, or the end. */
export type Step<S, A, E, R> = (state: S) => Effect.Effect<Option.Option<readonly [Chunk.Chunk<A>, S]>, E, R>

/** The pause a chunk asks for: its last error's. */
const pauseIn = <A>(chunk: Chunk.Chunk<A>, pauseOf: (item: A) => Pause | undefined): Pause | undefined => {
  let pause: Pause | undefined
  for (const item of chunk) pause = pauseOf(item) ?? pause
  return pause
}

/**
 * `step`, paced: after a chunk holding an error, the next step waits as that error asks. The
 * returned step keeps the pacing state (schedule driver, pending pause) of one run.
 */
export const paced = <S, A, E, R>(step: Step<S, A, E, R>, options: BackoffOptions<A>): Step<S, A, E, R> => {
  const healthyAfter = Duration.toMillis(options.healthyAfter)
  // Made on first use: at a thousand mostly healthy streams, a schedule driver each is heap for
  // nothing. Before the first wait the schedule is fresh, so there is nothing to reset.
  let driver: Schedule.ScheduleDriver<unknown, unknown> | undefined
  /** When the stream last started running again after a wait. */
  let runningSince: number | undefined
  /** What the last chunk asked for, waited at the start of the next step. */
  let pending: Pause | undefined
  const wait = (pause: Pause) =>
    Effect.gen(function* () {
      if (pause._tag === "Fixed") {
        yield* Effect.sleep(pause.delay)
      } else {
        if (driver === undefined) driver = yield* Schedule.driver(options.schedule)
        const now = yield* Clock.currentTimeMillis
        if (runningSince !== undefined && now - runningSince >= healthyAfter) yield* driver.reset
        yield* Effect.ignore(driver.next(undefined))
        if (Duration.greaterThan(pause.extra, Duration.zero)) yield* Effect.sleep(pause.extra)
      }
      runningSince = yield* Clock.currentTimeMillis
    })
  const remember = (result: Option.Option<readonly [Chunk.Chunk<A>, S]>) => {
    if (Option.isSome(result)) pending = pauseIn(result.value[0], options.pauseOf)
    return result
  }
  return (state: S) => {
    const pause = pending
    pending = undefined
    const stepped = Effect.map(step(state), remember)
    return pause === undefined ? stepped : Effect.zipRight(wait(pause), stepped)
  }
}

/**
 * `Stream.unfoldChunkEffect(initial, step)`, paced (see `paced`). Each run of the stream has its
 * own schedule.
 */
export const unfoldPaced = <S, A, E, R>(
  initial: S,
  step: Step<S, A, E, R>,
  options: BackoffOptions<A>,
): Stream.Stream<A, E, R> => Stream.suspend(() => Stream.unfoldChunkEffect(initial, paced(step, options)))
