/**
 * Who may start a resync, and when: one runs at a time (a caller arriving while one runs joins it
 * and gets its answer), and requests from outside start one at most once per minimum interval, so
 * that a script calling in a loop cannot make the controller relist every type from the API server
 * over and over. The periodic resync is not limited but counts as a start.
 */
import { Clock, Data, Deferred, Duration, Effect, Option, Ref, type Scope } from "effect"

/** A request within the minimum interval with no resync running to join. */
export class ResyncRateLimited extends Data.TaggedError("ResyncRateLimited")<{
  /** How long until a request would start one. */
  readonly retryAfter: Duration.Duration
}> {
  override get message(): string {
    return `a resync was started less than the minimum interval ago; retry in ${Duration.format(this.retryAfter)}`
  }
}

interface State<A> {
  readonly running: Option.Option<Deferred.Deferred<A>>
  /** When the last resync started (Clock milliseconds). */
  readonly lastStarted: Option.Option<number>
}

/**
 * Milliseconds a limited request at `now` must still wait before it may start a resync, given when
 * the last one started; zero or less: it may start now.
 */
export const waitBeforeStart = (
  lastStarted: Option.Option<number>,
  now: number,
  minInterval: Duration.Duration,
): number =>
  Option.match(lastStarted, {
    onNone: () => 0,
    onSome: (started) => started + Duration.toMillis(minInterval) - now,
  })

type Admission<A> =
  | { readonly _tag: "Start" }
  | { readonly _tag: "Join"; readonly running: Deferred.Deferred<A> }
  | { readonly _tag: "Refuse"; readonly retryAfterMillis: number }

export interface ResyncGate<A> {
  /** Starts the task, or joins the one running. Not limited: the periodic resync, library users. */
  readonly run: Effect.Effect<A>
  /** As `run`, but starts one at most once per minimum interval; otherwise fails. */
  readonly request: Effect.Effect<A, ResyncRateLimited>
}

/** The task runs forked into the scope: a caller that goes away does not abort it for the others. */
export const make = <A>(
  task: Effect.Effect<A>,
  minInterval: Duration.Duration,
): Effect.Effect<ResyncGate<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const state = yield* Ref.make<State<A>>({ running: Option.none(), lastStarted: Option.none() })

    const enter = (limited: boolean): Effect.Effect<A, ResyncRateLimited> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const mine = yield* Deferred.make<A>()
        const decision = yield* Ref.modify(state, (s): readonly [Admission<A>, State<A>] => {
          if (Option.isSome(s.running)) return [{ _tag: "Join", running: s.running.value }, s]
          const wait = limited ? waitBeforeStart(s.lastStarted, now, minInterval) : 0
          return wait > 0
            ? [{ _tag: "Refuse", retryAfterMillis: wait }, s]
            : [{ _tag: "Start" }, { running: Option.some(mine), lastStarted: Option.some(now) }]
        })
        switch (decision._tag) {
          case "Refuse":
            return yield* new ResyncRateLimited({ retryAfter: Duration.millis(decision.retryAfterMillis) })
          case "Join":
            return yield* Deferred.await(decision.running)
          case "Start":
            yield* task.pipe(
              Effect.exit,
              Effect.flatMap((exit) => Deferred.done(mine, exit)),
              Effect.ensuring(Ref.update(state, (s) => ({ ...s, running: Option.none() }))),
              Effect.forkIn(scope),
            )
            return yield* Deferred.await(mine)
        }
      })

    // An unlimited entry is never refused, so `orDie` removes an error that cannot happen.
    return { run: Effect.orDie(enter(false)), request: enter(true) }
  })
