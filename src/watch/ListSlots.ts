/**
 * A bound on the initial lists in flight, shared by every type's watch: a thousand types starting at
 * once must not list all at once.
 */
import { Effect, Queue } from "effect"

/** At most a fixed number of lists at once. `take` waits for a slot and returns its release (idempotent). */
export interface ListSlots {
  readonly take: Effect.Effect<Effect.Effect<void>>
}

/**
 * First come first served, by a queue of tokens rather than Effect's Semaphore: a release hands the
 * token to the one caller waiting longest, where the semaphore wakes every waiter to let one through;
 * with a thousand types waiting to list, that was quadratic.
 */
export const make = (slots: number): Effect.Effect<ListSlots> =>
  Effect.gen(function* () {
    const tokens = yield* Queue.bounded<void>(slots)
    yield* Queue.offerAll(
      tokens,
      Array.from({ length: slots }, () => undefined),
    )
    return {
      take: Effect.map(Queue.take(tokens), () => {
        let released = false
        return Effect.suspend(() => {
          if (released) return Effect.void
          released = true
          return Effect.asVoid(Queue.offer(tokens, undefined))
        })
      }),
    }
  })

/** No bound: every list starts at once. */
export const unbounded: ListSlots = { take: Effect.succeed(Effect.void) }
