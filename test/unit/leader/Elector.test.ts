import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Option,
  Ref,
  Scope,
  Stream,
  SubscriptionRef,
  TestClock,
} from "effect"
import { KubeApiError } from "../../../src/kube/KubeError.js"
import { Elector, makeWithStore, runAsLeader } from "../../../src/leader/Elector.js"
import { type Lease, LeaseRequestError, type LeaseStore, recordOf } from "../../../src/leader/LeaseStore.js"
import type { ElectionOptions } from "../../../src/leader/Options.js"
import type { LeaseRecord } from "../../../src/leader/Rules.js"
import { record } from "./fixtures.js"

// ---------------------------------------------------------------------------------------------------
// The loops, under TestClock, over an in-memory store with the API server's optimistic concurrency
// ---------------------------------------------------------------------------------------------------

interface Write {
  readonly at: number
  readonly by: string
  readonly record: LeaseRecord
}

const conflict = (lease: string) =>
  new LeaseRequestError({
    lease,
    operation: "update",
    conflict: true,
    message: "409",
    cause: new KubeApiError({
      method: "PUT",
      path: "/",
      code: 409,
      reason: "Conflict",
      message: "conflict",
      retryAfterSeconds: Option.none(),
      status: Option.none(),
      body: "",
    }),
  })

const memoryLease = Effect.gen(function* () {
  const stored = yield* Ref.make<Option.Option<Lease>>(Option.none())
  const conflicts = yield* Ref.make(0)
  const writes = yield* Ref.make<ReadonlyArray<Write>>([])
  // Updates that will meet a competing write first (another writer gets in between read and write).
  const pendingConflicts = yield* Ref.make(0)
  let version = 0
  const toLease = (r: LeaseRecord): Lease => ({
    metadata: { resourceVersion: String(++version) },
    spec: { ...r },
  })
  /** The store as one replica sees it; `cut` makes every request of that replica hang. */
  const client = (by: string, cut: Ref.Ref<boolean>): LeaseStore => {
    const guard = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.flatMap(Ref.get(cut), (isCut) => (isCut ? Effect.never : effect))
    const log = (r: LeaseRecord) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) =>
        Ref.update(writes, (all) => [...all, { at, by, record: r }]),
      )
    return {
      get: guard(Ref.get(stored)),
      create: (r) =>
        guard(
          Effect.gen(function* () {
            if (Option.isSome(yield* Ref.get(stored))) return yield* Effect.fail(conflict("ns/lease"))
            const lease = toLease(r)
            yield* Ref.set(stored, Option.some(lease))
            yield* log(r)
            return lease
          }),
        ),
      update: (current, r) =>
        guard(
          Effect.gen(function* () {
            if ((yield* Ref.getAndUpdate(pendingConflicts, (n) => Math.max(0, n - 1))) > 0) {
              yield* Ref.update(
                stored,
                Option.map((l) => ({ ...l, metadata: { resourceVersion: String(++version) } })),
              )
              yield* Ref.update(conflicts, (n) => n + 1)
            }
            const now = yield* Ref.get(stored)
            if (Option.isNone(now) || now.value.metadata.resourceVersion !== current.metadata.resourceVersion)
              return yield* Effect.fail(conflict("ns/lease"))
            const lease = toLease(r)
            yield* Ref.set(stored, Option.some(lease))
            yield* log(r)
            return lease
          }),
        ),
    }
  }
  return {
    client,
    writes: Ref.get(writes),
    holder: Effect.map(
      Ref.get(stored),
      Option.map((l) => recordOf(l).holderIdentity),
    ),
    conflicts: Ref.get(conflicts),
    conflictNext: (n: number) => Ref.set(pendingConflicts, n),
    /** Another party writes the lease behind the replicas' back. */
    overwrite: (r: LeaseRecord) => Ref.set(stored, Option.some(toLease(r))),
  }
})

const options = (identity: string): ElectionOptions => ({
  namespace: "ns",
  name: "lease",
  identity,
  leaseDuration: "15 seconds",
  renewDeadline: "10 seconds",
  retryPeriod: "2 seconds",
})

/**
 * Waits until every fiber the test started is suspended (waiting on the clock, a queue or a
 * deferred) or done, without moving the clock: TestClock.adjust awaits exactly that before it
 * moves time. A guarantee, where a fixed number of yields was a guess.
 */
const settle = TestClock.adjust(0)
const advanceTo = (ms: number) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => TestClock.adjust(Math.max(0, ms - now))).pipe(
    Effect.zipRight(settle),
  )

/** A replica: its elector, a switch that cuts it off the store, and the leadership it holds in its own scope. */
const replica = (memory: Effect.Effect.Success<typeof memoryLease>, identity: string) =>
  Effect.gen(function* () {
    const cut = yield* Ref.make(false)
    const elector = yield* makeWithStore(options(identity), memory.client(identity, cut))
    const scope = yield* Scope.make()
    const acquiredAt = yield* Deferred.make<number>()
    const lostAt = yield* Deferred.make<{ at: number; reason: string }>()
    // Every value the elector publishes, with when: what the sender would read before a POST.
    const published = yield* Ref.make<ReadonlyArray<{ at: number; leading: boolean }>>([])
    yield* elector.leadership.changes.pipe(
      Stream.runForEach((leading) =>
        Effect.flatMap(Clock.currentTimeMillis, (at) =>
          Ref.update(published, (all) => [...all, { at, leading }]),
        ),
      ),
      Effect.forkScoped,
    )
    yield* settle // subscribed before the elector starts
    const leadingWhenLost = yield* Ref.make<Option.Option<boolean>>(Option.none())
    const fiber = yield* Effect.gen(function* () {
      const term = yield* elector.awaitLeadership
      yield* Deferred.succeed(acquiredAt, yield* Clock.currentTimeMillis)
      const lost = yield* term.lost
      yield* Ref.set(leadingWhenLost, Option.some(yield* SubscriptionRef.get(elector.leadership)))
      yield* Deferred.succeed(lostAt, { at: yield* Clock.currentTimeMillis, reason: lost.reason })
    }).pipe(Scope.extend(scope), Effect.fork)
    yield* settle
    return {
      cut: Ref.set(cut, true),
      published: Ref.get(published),
      /** Until when the sender may send by its own clock. */
      expiry: elector.expiry,
      leadingWhenLost: Ref.get(leadingWhenLost),
      acquired: Deferred.poll(acquiredAt).pipe(
        Effect.flatMap(
          Option.match({ onNone: () => Effect.succeed(Option.none<number>()), onSome: Effect.asSome }),
        ),
      ),
      lost: Deferred.poll(lostAt).pipe(
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.succeed(Option.none<{ at: number; reason: string }>()),
            onSome: Effect.asSome,
          }),
        ),
      ),
      /** Clean shutdown: interrupt, then close the scope (which releases). */
      stop: Fiber.interrupt(fiber).pipe(
        Effect.zipRight(Scope.close(scope, Exit.void)),
        Effect.zipRight(settle),
      ),
    }
  })

describe("the elector under TestClock", () => {
  it.scoped("creates the lease at once and renews it every retryPeriod", () =>
    Effect.gen(function* () {
      const memory = yield* memoryLease
      const a = yield* replica(memory, "a")
      expect(yield* a.acquired).toEqual(Option.some(0))
      yield* advanceTo(1_999)
      expect((yield* memory.writes).map((w) => w.at)).toEqual([0])
      yield* advanceTo(2_000)
      yield* advanceTo(6_000)
      const writes = yield* memory.writes
      expect(writes.map((w) => w.at)).toEqual([0, 2_000, 4_000, 6_000])
      expect(writes.every((w) => w.by === "a" && w.record.holderIdentity === "a")).toBe(true)
      expect(new Set(writes.map((w) => w.record.acquireTime)).size).toBe(1)
      yield* a.stop
    }),
  )

  it.scoped(
    "a standby waits while the leader renews, and takes over a lease duration after the leader went silent; the leader stops first",
    () =>
      Effect.gen(function* () {
        const memory = yield* memoryLease
        const a = yield* replica(memory, "a")
        const b = yield* replica(memory, "b")
        yield* advanceTo(60_000)
        expect(yield* b.acquired).toEqual(Option.none())
        expect(yield* memory.holder).toEqual(Option.some("a"))
        // a's last successful renewal started at 60 000; b read that record within one (jittered) retry period.
        yield* a.cut
        yield* advanceTo(69_999)
        expect(yield* a.lost).toEqual(Option.none())
        yield* advanceTo(70_000)
        expect(yield* a.lost).toEqual(Option.some({ at: 70_000, reason: "RenewDeadlineExceeded" }))
        // Published false by the time anyone hears of the loss, and not a moment before the deadline.
        expect(yield* a.leadingWhenLost).toEqual(Option.some(false))
        expect(yield* a.published).toEqual([
          { at: 0, leading: false },
          { at: 0, leading: true },
          { at: 70_000, leading: false },
        ])
        expect(yield* b.acquired).toEqual(Option.none())
        yield* advanceTo(60_000 + 15_000 - 1)
        expect(yield* b.acquired).toEqual(Option.none())
        yield* advanceTo(100_000)
        const takeover = Option.getOrThrow(yield* b.acquired)
        // Expired 15 s after b saw the last renewal (≤ 60 000 + 2 400), noticed at b's next attempt (≤ 2 400 later).
        expect(takeover).toBeGreaterThanOrEqual(75_000)
        expect(takeover).toBeLessThanOrEqual(60_000 + 2_400 + 15_000 + 2_400)
        const last = (yield* memory.writes).at(-1)
        expect(last?.record).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 })
        // The standby published false until it took over.
        expect(yield* b.published).toEqual([
          { at: 0, leading: false },
          { at: takeover, leading: true },
        ])
        yield* b.stop
      }),
  )

  it.scoped("releasing on shutdown lets the standby take over at its next attempt", () =>
    Effect.gen(function* () {
      const memory = yield* memoryLease
      const a = yield* replica(memory, "a")
      const b = yield* replica(memory, "b")
      yield* advanceTo(10_000)
      yield* a.stop
      expect((yield* a.published).at(-1)).toEqual({ at: 10_000, leading: false })
      expect((yield* memory.writes).at(-1)?.record).toMatchObject({
        holderIdentity: "",
        leaseDurationSeconds: 1,
      })
      yield* advanceTo(12_400)
      expect(yield* b.acquired).toEqual(Option.some(expect.any(Number)))
      expect(Option.getOrThrow(yield* b.acquired)).toBeLessThanOrEqual(12_400)
      yield* b.stop
    }),
  )

  it.scoped("a leader that sees another holder loses at once, without waiting for the renew deadline", () =>
    Effect.gen(function* () {
      const memory = yield* memoryLease
      const a = yield* replica(memory, "a")
      yield* advanceTo(3_000)
      yield* memory.overwrite(record({ holderIdentity: "intruder" }))
      yield* advanceTo(4_000)
      expect(yield* a.lost).toEqual(Option.some({ at: 4_000, reason: "TakenOver" }))
      expect(yield* a.leadingWhenLost).toEqual(Option.some(false))
      // It does not release a lease that is not its own.
      yield* a.stop
      expect(yield* memory.holder).toEqual(Option.some("intruder"))
    }),
  )

  it.scoped(
    "a 409 Conflict is retried at the next period; conflicts until the renew deadline lose the lease",
    () =>
      Effect.gen(function* () {
        const memory = yield* memoryLease
        const a = yield* replica(memory, "a")
        // Acquired by the attempt that started at 0: the sender may send until 0 + renewDeadline.
        expect(yield* a.expiry).toBe(10_000)
        yield* memory.conflictNext(2)
        yield* advanceTo(4_000)
        expect(yield* a.expiry).toBe(10_000)
        yield* advanceTo(6_000)
        expect(yield* memory.conflicts).toBe(2)
        // 2 000 and 4 000 met a competing write; 6 000 read the new version and renewed.
        expect((yield* memory.writes).map((w) => w.at)).toEqual([0, 6_000])
        expect(yield* a.lost).toEqual(Option.none())
        expect(yield* a.expiry).toBe(16_000)
        // Now every attempt conflicts: the last good renewal started at 6 000, so leadership ends at 16 000.
        yield* memory.conflictNext(1_000)
        yield* advanceTo(15_999)
        expect(yield* a.lost).toEqual(Option.none())
        yield* advanceTo(16_000)
        expect(yield* a.lost).toEqual(Option.some({ at: 16_000, reason: "RenewDeadlineExceeded" }))
        yield* a.stop
      }),
  )

  it.scoped(
    "runAsLeader starts the effect only once leading, and interrupts it with LeadershipLost when the lease goes",
    () =>
      Effect.gen(function* () {
        const memory = yield* memoryLease
        yield* memory.overwrite(record({ holderIdentity: "other", leaseDurationSeconds: 15 }))
        const cut = yield* Ref.make(false)
        const elector = yield* makeWithStore(options("me"), memory.client("me", cut))
        const started = yield* Ref.make<Option.Option<number>>(Option.none())
        const interrupted = yield* Ref.make(false)
        const fiber = yield* runAsLeader(
          Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.set(started, Option.some(now))).pipe(
            Effect.zipRight(Effect.never),
            Effect.onInterrupt(() => Ref.set(interrupted, true)),
          ),
        ).pipe(Effect.provideService(Elector, elector), Effect.fork)
        yield* advanceTo(14_999)
        expect(yield* Ref.get(started)).toEqual(Option.none())
        // Expired at 15 000 by its clock; noticed at the next attempt, at most one jittered period later.
        yield* advanceTo(17_400)
        const startedAt = Option.getOrThrow(yield* Ref.get(started))
        expect(startedAt).toBeGreaterThanOrEqual(15_000)
        yield* Ref.set(cut, true)
        // The last renewal started at the latest now: the deadline is at most 10 s away.
        yield* advanceTo((yield* Clock.currentTimeMillis) + 10_000)
        const exit = yield* Fiber.await(fiber)
        expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toEqual(
          Option.some(expect.objectContaining({ _tag: "LeadershipLost", reason: "RenewDeadlineExceeded" })),
        )
        expect(yield* Ref.get(interrupted)).toBe(true)
      }),
  )

  it.scoped("interrupting a standby writes nothing", () =>
    Effect.gen(function* () {
      const memory = yield* memoryLease
      const a = yield* replica(memory, "a")
      const b = yield* replica(memory, "b")
      yield* advanceTo(5_000)
      yield* b.stop
      expect((yield* memory.writes).every((w) => w.by === "a")).toBe(true)
      expect(yield* memory.holder).toEqual(Option.some("a"))
      yield* a.stop
    }),
  )
})
