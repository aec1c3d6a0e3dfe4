/**
 * One attempt at the Lease, as client-go makes it (`tryAcquireOrRenew`): read it, decide by the
 * rules, write when they allow; and the release of a lease we hold. Keeps what the next attempt
 * needs from the last (when we first saw the record, the resourceVersion to PUT with); schedules
 * nothing itself: when to attempt is the elector's business.
 */
import { Clock, Duration, Effect, Option, Ref, Schedule } from "effect"
import * as LeaseStore from "./LeaseStore.js"
import type { ElectionOptions } from "./Options.js"
import {
  decide,
  leaseDurationSeconds,
  nextRecord,
  type Observation,
  observe,
  releasedRecord,
} from "./Rules.js"

export type Attempt =
  /** We hold the lease; `startedAt` is when the successful attempt began (the renewal's age). */
  | { readonly _tag: "Held"; readonly startedAt: number }
  | { readonly _tag: "HeldByOther"; readonly holder: string; readonly expiresAt: number }

export const make = (options: ElectionOptions, store: LeaseStore.LeaseStore) =>
  Effect.gen(function* () {
    const { identity } = options
    const lease = `${options.namespace}/${options.name}`
    const durationSeconds = leaseDurationSeconds(options.leaseDuration)
    const renewDeadlineMs = Duration.toMillis(Duration.decode(options.renewDeadline))
    // The record as last read or written, and since when (on our clock) it has looked like this.
    const observation = yield* Ref.make<Option.Option<Observation>>(Option.none())
    // Whether we ever wrote the lease as its holder: only then is there anything to release.
    const wrote = yield* Ref.make(false)

    const remember = (written: LeaseStore.Lease, now: number) =>
      Ref.set(observation, Option.some({ record: LeaseStore.recordOf(written), observedAt: now }))

    /** client-go's `tryAcquireOrRenew`: one read, and one write when the rules allow it. */
    const tryAcquireOrRenew: Effect.Effect<Attempt, LeaseStore.LeaseRequestError> = Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const current = yield* store.get
      const now = yield* Clock.currentTimeMillis
      const previous = yield* Ref.get(observation)
      const observed = Option.map(current, (l) => observe(previous, LeaseStore.recordOf(l), now))
      yield* Ref.set(observation, observed)
      const decision = decide(identity, observed, now)
      if (decision._tag === "Wait")
        return { _tag: "HeldByOther", holder: decision.holder, expiresAt: decision.expiresAt } as const
      const record = nextRecord(
        decision,
        identity,
        Option.map(observed, (o) => o.record),
        durationSeconds,
        startedAt,
      )
      yield* Ref.set(wrote, true)
      const written = Option.isNone(current)
        ? yield* store.create(record)
        : yield* store.update(current.value, record)
      yield* remember(written, yield* Clock.currentTimeMillis)
      if (decision._tag === "TakeOver")
        yield* Effect.logInfo("acquired the leader-election lease").pipe(
          Effect.annotateLogs({ lease, identity, previousHolder: decision.previousHolder }),
        )
      else if (decision._tag === "Create")
        yield* Effect.logInfo("created the leader-election lease").pipe(
          Effect.annotateLogs({ lease, identity }),
        )
      return { _tag: "Held", startedAt } as const
    })

    /** Steps down if we still hold the lease (read fresh: never overwrite another holder). */
    const release: Effect.Effect<boolean> = Effect.gen(function* () {
      const current = yield* store.get
      if (Option.isNone(current)) return false
      const record = LeaseStore.recordOf(current.value)
      if (record.holderIdentity !== identity) return false
      yield* store.update(current.value, releasedRecord(record, yield* Clock.currentTimeMillis))
      return true
    }).pipe(
      Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), while: (e) => e.conflict, times: 5 }),
      Effect.timeoutOption(Duration.millis(renewDeadlineMs)),
      Effect.flatMap(
        Option.match({
          onNone: () =>
            Effect.logWarning("leader election: could not release the lease in time").pipe(
              Effect.annotateLogs({ lease, identity }),
              Effect.as(false),
            ),
          onSome: (released) =>
            released
              ? Effect.logInfo("released the leader-election lease").pipe(
                  Effect.annotateLogs({ lease, identity }),
                  Effect.as(true),
                )
              : Effect.succeed(false),
        }),
      ),
      Effect.catchAll((error) =>
        Effect.logWarning("leader election: could not release the lease").pipe(
          Effect.annotateLogs({ lease, identity, error: error.message }),
          Effect.as(false),
        ),
      ),
    )

    return {
      tryAcquireOrRenew,
      release,
      /** Whether we ever wrote the lease as its holder: only then is there anything to release. */
      wrote: Ref.get(wrote),
    } as const
  })
