/**
 * The elector: sequences the rules of `Rules.ts` over a `LeaseStore`, with client-go's semantics,
 * so that several replicas can run and exactly one of them watches and sends. It publishes whether
 * this process leads into the `Leadership` SubscriptionRef, which the sender reads before each POST.
 *
 * - Acquire when the lease is absent, released (empty holder), held by us, or expired by our clock
 *   (`Rules.decide`); attempts at once, then every `retryPeriod`, jittered.
 * - The leader renews every `retryPeriod`. If no renewal has succeeded for `renewDeadline` (measured
 *   from the start of the last successful attempt, a conservative bound) leadership is lost. Since
 *   `renewDeadline < leaseDuration`, the leader gives up before any standby may take over. Seeing
 *   another holder in the record also means lost, at once (client-go would keep polling until the
 *   deadline; there is no reason to keep sending once we know). A 100 ms watchdog re-checks the
 *   deadline without I/O, so that a process that was frozen past it (SIGSTOP, paused VM) learns so
 *   among the first things it does on waking up. Among, not first: a batch timer that came due
 *   just before the watchdog's fires before it, so the deadline is also published as `expiry`
 *   (`LeadershipExpiry`), which the sender compares with the clock before every POST and the
 *   receivers' HTTP client again as it writes it (`WriteFence`). What no lease can prevent: a
 *   request already on the wire when the process froze arrives late.
 * - Releasing (closing the scope of `awaitLeadership` while still leading) writes an empty holder
 *   with a 1 s duration, so that a standby takes over at its next attempt instead of waiting a full
 *   lease duration.
 *
 * The retries here are client-go's fixed `retryPeriod`, not a backoff: a standby that backed off
 * would take over later than the lease allows, and a leader that backed off would miss its deadline.
 */
import {
  Clock,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Layer,
  Option,
  Ref,
  Schedule,
  type Scope,
  SubscriptionRef,
} from "effect"
import { SyncConfig } from "../config/Config.js"
import type { WriteFence } from "../http/WriteFence.js"
import { KubeClient } from "../kube/KubeClient.js"
import * as Attempts from "./Attempts.js"
import { Leadership, LeadershipExpiry, writeFence } from "./Leadership.js"
import * as LeaseStore from "./LeaseStore.js"
import { type ElectionOptions, fromConfig } from "./Options.js"

/** This process led and no longer does: stop sending at once. */
export class LeadershipLost extends Data.TaggedError("LeadershipLost")<{
  readonly lease: string
  readonly identity: string
  readonly reason: "RenewDeadlineExceeded" | "TakenOver"
  readonly message: string
}> {}

/** Holding the lease, for the lifetime of the scope `awaitLeadership` ran in. */
export interface Term {
  /** Completes when leadership is lost; never completes while it is held. */
  readonly lost: Effect.Effect<LeadershipLost>
  readonly isLeader: Effect.Effect<boolean>
}

export interface ElectorShape {
  readonly identity: string
  /** `namespace/name` of the Lease. */
  readonly lease: string
  /** True from acquiring until leadership is lost or released; false before. */
  readonly leadership: SubscriptionRef.SubscriptionRef<boolean>
  /** Until when (our clock) the last successful renewal lets us lead: its start plus the renew deadline. */
  readonly expiry: Effect.Effect<number>
  /**
   * Waits (retrying every `retryPeriod`, jittered) until this process holds the lease, then keeps
   * renewing it in the background for as long as the scope is open. Closing the scope stops the
   * renewals and releases the lease if we still hold it.
   */
  readonly awaitLeadership: Effect.Effect<Term, never, Scope.Scope>
}

export class Elector extends Context.Tag("k8s-vectordb-sync/Elector")<Elector, ElectorShape>() {
  static readonly make = (options: ElectionOptions) => make(options)
  /** The elector, and the `Leadership` it publishes into (false until `awaitLeadership` acquires). */
  static readonly layer = (
    options: ElectionOptions,
  ): Layer.Layer<Elector | Leadership | LeadershipExpiry | WriteFence, never, KubeClient> =>
    Layer.effectContext(
      Effect.map(make(options), (elector) =>
        Context.make(Elector, elector).pipe(
          Context.add(Leadership, elector.leadership),
          Context.add(LeadershipExpiry, elector.expiry),
          Context.merge(writeFence(elector.leadership, elector.expiry)),
        ),
      ),
    )
  /** From `SyncConfig.leaderElection`, with the namespace and identity resolved as documented. */
  static readonly layerConfig: Layer.Layer<
    Elector | Leadership | LeadershipExpiry | WriteFence,
    never,
    SyncConfig | KubeClient
  > = Layer.unwrapEffect(Effect.map(SyncConfig, (config) => Elector.layer(fromConfig(config.leaderElection))))
}

/**
 * Runs `effect` while this process leads: waits for the lease first, and when leadership is lost
 * interrupts `effect` and fails with `LeadershipLost`. Interrupting runs `effect`'s finalizers: an
 * embedding program whose finalizers send must check `Leadership` there, or stop the process on
 * `Term.lost` as `main.ts` does.
 */
export const runAsLeader = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | LeadershipLost, R | Elector> =>
  Effect.scoped(
    Effect.gen(function* () {
      const elector = yield* Elector
      const term = yield* elector.awaitLeadership
      return yield* Effect.raceFirst(effect, Effect.flatMap(term.lost, Effect.fail))
    }),
  )

const WATCHDOG_TICK = Duration.millis(100)

/** Runs `check` every `period` (the first one a period from now) until it fails; the failure is the result. */
const untilFails = <E>(check: Effect.Effect<void, E>, period: Duration.Duration): Effect.Effect<E> =>
  check.pipe(Effect.schedule(Schedule.spaced(period)), Effect.zipRight(Effect.never), Effect.flip)

/**
 * The elector for one identity and one Lease over a `LeaseStore`: exposed for tests, which drive it
 * with an in-memory store under `TestClock`.
 */
export const makeWithStore = (
  options: ElectionOptions,
  store: LeaseStore.LeaseStore,
): Effect.Effect<ElectorShape> =>
  Effect.gen(function* () {
    const { identity } = options
    const lease = `${options.namespace}/${options.name}`
    const renewDeadlineMs = Duration.toMillis(Duration.decode(options.renewDeadline))
    const retryPeriod = Duration.decode(options.retryPeriod)
    const leadership = yield* SubscriptionRef.make(false)
    // Set before leadership turns true and after every renewal: the sender's fence by the clock.
    const validUntil = yield* Ref.make(0)
    const { tryAcquireOrRenew, release, wrote } = yield* Attempts.make(options, store)

    // Log a failure or a new holder once, not at every attempt.
    const lastLogged = yield* Ref.make("")
    const logOnce = (key: string, log: Effect.Effect<void>) =>
      Effect.flatMap(Ref.getAndSet(lastLogged, key), (previous) => (previous === key ? Effect.void : log))

    /** One acquisition attempt: `Some(startedAt)` once we hold the lease; failures are logged. */
    const acquireOnce: Effect.Effect<Option.Option<number>> = tryAcquireOrRenew.pipe(
      Effect.tap((attempt) =>
        attempt._tag === "HeldByOther"
          ? logOnce(
              `holder:${attempt.holder}`,
              Effect.logInfo("standing by: the lease is held by another replica").pipe(
                Effect.annotateLogs({ lease, identity, holder: attempt.holder }),
              ),
            )
          : Effect.void,
      ),
      Effect.map((attempt) => (attempt._tag === "Held" ? Option.some(attempt.startedAt) : Option.none())),
      Effect.catchAll((error) =>
        error.conflict
          ? Effect.succeedNone // somebody wrote first: read again at the next attempt
          : logOnce(
              `error:${error.message}`,
              Effect.logWarning("leader election: lease request failed, retrying").pipe(
                Effect.annotateLogs({ lease, identity, error: error.message }),
              ),
            ).pipe(Effect.as(Option.none())),
      ),
    )

    /** Attempts at once, then every `retryPeriod` (jittered, so that standbys do not march in step). */
    const acquire: Effect.Effect<number> = acquireOnce.pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.fail("NotYet" as const), onSome: Effect.succeed })),
      Effect.retry(Schedule.spaced(retryPeriod).pipe(Schedule.jittered)),
      Effect.orDie, // retried forever: never fails
    )

    const deadlineExceeded = new LeadershipLost({
      lease,
      identity,
      reason: "RenewDeadlineExceeded",
      message: `lease ${lease} not renewed within the renew deadline (${renewDeadlineMs} ms)`,
    })

    /**
     * One renewal, retried every `retryPeriod` until it succeeds or the deadline (counted from the
     * start of the last successful one, kept in `renewedAt`) passes. Fails with `LeadershipLost`
     * then, or at once when another holder shows up.
     */
    const renew = (renewedAt: Ref.Ref<number>): Effect.Effect<void, LeadershipLost> =>
      Effect.gen(function* () {
        const remaining = (yield* Ref.get(renewedAt)) + renewDeadlineMs - (yield* Clock.currentTimeMillis)
        if (remaining <= 0) return yield* Effect.fail(deadlineExceeded)
        const outcome = yield* tryAcquireOrRenew.pipe(
          Effect.tapError((error) =>
            Effect.logWarning("leader election: renewal failed, retrying").pipe(
              Effect.annotateLogs({ lease, identity, error: error.message }),
            ),
          ),
          Effect.retry(Schedule.spaced(retryPeriod)),
          Effect.orDie, // retried until the timeout below: never fails
          Effect.timeoutOption(Duration.millis(remaining)),
        )
        if (Option.isNone(outcome)) return yield* Effect.fail(deadlineExceeded)
        if (outcome.value._tag === "HeldByOther")
          return yield* Effect.fail(
            new LeadershipLost({
              lease,
              identity,
              reason: "TakenOver",
              message: `lease ${lease} is now held by ${outcome.value.holder}`,
            }),
          )
        yield* Ref.set(renewedAt, outcome.value.startedAt)
        yield* Ref.set(validUntil, outcome.value.startedAt + renewDeadlineMs)
      })

    /**
     * The deadline, checked without I/O. The renewals alone would notice a deadline that passed
     * while the process was frozen (SIGSTOP, a VM paused, a long GC) only when their own timer
     * fires, and after a freeze timers fire in the order they were due: a batch that came due
     * meanwhile could be sent first. The watchdog's short tick is always among the first to fire.
     */
    const checkDeadline = (renewedAt: Ref.Ref<number>): Effect.Effect<void, LeadershipLost> =>
      Effect.flatMap(Effect.all([Clock.currentTimeMillis, Ref.get(renewedAt)]), ([now, renewed]) =>
        now >= renewed + renewDeadlineMs ? Effect.fail(deadlineExceeded) : Effect.void,
      )

    const awaitLeadership: Effect.Effect<Term, never, Scope.Scope> = Effect.gen(function* () {
      const lost = yield* Deferred.make<LeadershipLost>()
      // Registered before acquiring, so that an interruption right after a successful write still
      // releases; `release` reads the lease first and never overwrites another holder. Leadership
      // turns false before the release is written: nothing may be sent once a standby can take over.
      yield* Effect.addFinalizer(() =>
        SubscriptionRef.set(leadership, false).pipe(
          Effect.zipRight(Effect.all([wrote, Deferred.isDone(lost)])),
          Effect.flatMap(([written, isLost]) => (written && !isLost ? release : Effect.void)),
        ),
      )
      yield* Effect.logInfo("waiting for the leader-election lease").pipe(
        Effect.annotateLogs({ lease, identity }),
      )
      const acquiredAt = yield* acquire
      yield* Ref.set(validUntil, acquiredAt + renewDeadlineMs)
      yield* SubscriptionRef.set(leadership, true)
      yield* Effect.logInfo("leading").pipe(Effect.annotateLogs({ lease, identity }))
      // Runs until leadership is lost or the scope closes; closing interrupts it before the release
      // above runs (finalizers run in reverse order), so no renewal races the release.
      const renewedAt = yield* Ref.make(acquiredAt)
      yield* Effect.raceFirst(
        untilFails(renew(renewedAt), retryPeriod),
        untilFails(checkDeadline(renewedAt), Duration.min(WATCHDOG_TICK, retryPeriod)),
      ).pipe(
        // Leadership first: the sender reads it before every POST, whoever hears of `lost` later.
        Effect.tap(() => SubscriptionRef.set(leadership, false)),
        Effect.flatMap((reason) => Deferred.succeed(lost, reason)),
        Effect.forkScoped,
      )
      return {
        lost: Deferred.await(lost),
        isLeader: Effect.map(Deferred.isDone(lost), (done) => !done),
      }
    })

    return Elector.of({ identity, lease, leadership, expiry: Ref.get(validUntil), awaitLeadership })
  })

const make = (options: ElectionOptions): Effect.Effect<ElectorShape, never, KubeClient> =>
  Effect.gen(function* () {
    const kube = yield* KubeClient
    // A request must never outlive the renew deadline it counts against.
    const store = LeaseStore.make(kube, options.namespace, options.name, options.renewDeadline)
    return yield* makeWithStore(options, store)
  })
