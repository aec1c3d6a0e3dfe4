/**
 * Backing off after errors, as a Stream combinator: the stream's items go downstream as they come,
 * and after a chunk that holds an error the next pull upstream waits first, so the request that
 * would fail again is not made at once. Errors are items here, not failures: the stream goes on.
 *
 * The delay is the next of `schedule` (see `schedule/Backoff.ts`), plus whatever the error asks
 * for on top (a Retry-After), or a fixed delay that leaves the schedule alone (a 403 is retried
 * rarely whatever the backoff says). The schedule starts again from its first delay only once the
 * stream has run `healthyAfter` since its last wait without an error: a watch that drops after
 * every event must not be retried every second for ever.
 */
import { Channel, type Chunk, Clock, Duration, Effect, Schedule, Stream } from "effect"
import { dual } from "effect/Function"

/** What an item asks for before the next pull. */
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

/** The pause a chunk asks for: its last error's. */
const pauseIn = <A>(chunk: Chunk.Chunk<A>, pauseOf: (item: A) => Pause | undefined): Pause | undefined => {
  let pause: Pause | undefined
  for (const item of chunk) pause = pauseOf(item) ?? pause
  return pause
}

export const pauseAfterErrors: {
  <A>(options: BackoffOptions<A>): <E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  <A, E, R>(self: Stream.Stream<A, E, R>, options: BackoffOptions<A>): Stream.Stream<A, E, R>
} = dual(2, <A, E, R>(self: Stream.Stream<A, E, R>, options: BackoffOptions<A>): Stream.Stream<A, E, R> => {
  const healthyAfter = Duration.toMillis(options.healthyAfter)
  // State made on first use: at a thousand mostly healthy streams, a schedule driver each is heap
  // for nothing. Before the first wait the schedule is fresh, so there is nothing to reset.
  const channel = Channel.suspend(() => {
    let driver: Schedule.ScheduleDriver<unknown, unknown> | undefined
    /** When the stream last started running again after a wait. */
    let runningSince: number | undefined
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
    const loop: Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<A>, E, E, unknown, unknown> = Channel.readWith({
      onInput: (chunk: Chunk.Chunk<A>) => {
        const pause = pauseIn(chunk, options.pauseOf)
        return pause === undefined
          ? Channel.zipRight(Channel.write(chunk), loop)
          : Channel.zipRight(Channel.write(chunk), Channel.zipRight(Channel.fromEffect(wait(pause)), loop))
      },
      onFailure: Channel.fail,
      onDone: () => Channel.void,
    })
    return loop
  })
  return Stream.pipeThroughChannel(self, channel)
})
