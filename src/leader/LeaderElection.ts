/**
 * Leader election through a `coordination.k8s.io/v1` Lease, with client-go's semantics, so that
 * several replicas can run and exactly one of them watches and sends.
 *
 * - Identity: unique per process (`POD_NAME`, else the hostname, plus a random suffix), so that a
 *   restarted container never mistakes the lease of its dead predecessor for its own.
 * - Acquire when the lease is absent, released (empty holder), held by us, or expired. Expiry is
 *   judged on our own clock: a lease is expired once `leaseDurationSeconds` have passed since *we*
 *   last saw its record change. The holder's `renewTime` is never compared with our clock, so clock
 *   skew between nodes does not matter (this is what client-go does).
 * - Writes are optimistic (PUT with the `resourceVersion` read): a 409 Conflict means somebody else
 *   wrote first; we read again at the next attempt.
 * - The leader renews every `retryPeriod`. If no renewal has succeeded for `renewDeadline` (measured
 *   from the start of the last successful attempt, a conservative bound) leadership is lost. Since
 *   `renewDeadline < leaseDuration`, the leader gives up before any standby may take over. Seeing
 *   another holder in the record also means lost, at once (client-go would keep polling until the
 *   deadline; there is no reason to keep sending once we know). A 100 ms watchdog re-checks the
 *   deadline without I/O, so that a process that was frozen past it (SIGSTOP, paused VM) learns so
 *   among the first things it does on waking up. What no lease can prevent: a request already on
 *   the wire when the process froze arrives late.
 * - Releasing (clean shutdown, after the final flush) writes an empty holder with a 1 s duration, so
 *   that a standby takes over at its next attempt instead of waiting a full lease duration.
 *
 * The process (`main.ts`) builds {@link processLayer} before the controller's Layers: it blocks until
 * this process leads, keeps the lease renewed while the controller runs (also during the final flush
 * on SIGTERM), releases it after the controller has shut down, and exits the process with code 1 the
 * moment leadership is lost. Exiting, rather than interrupting the controller, is deliberate: an
 * interruption would run the pipeline's finalizer, which flushes pending changes, i.e. sends as a
 * non-leader. Kubernetes restarts the container and it comes back as a standby (controller-runtime
 * does the same).
 *
 * While a standby waits, {@link processLayer} answers the health probes itself: `/healthz` 200 (the
 * process is alive) and `/readyz` 200 with the body `standby: …`. A standby is ready in the sense
 * that matters to Kubernetes: it is doing what it should, and a standby that reported 503 would stall
 * every rolling update of a Deployment (the new pod can never become ready while the old one holds
 * the lease). Once leading, the controller's own health server takes the port over and `/readyz`
 * means "initial lists complete" again.
 */
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import { hostname } from "node:os"
// Per-module imports: the package index pulls in the API-doc pages (~20 MiB of source) for nothing.
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpServer } from "@effect/platform-node"
import {
  Clock,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Ref,
  Schedule,
  Schema,
  Scope,
} from "effect"
import { type LeaderElectionConfig, SyncConfig } from "../config/Config.js"
import { KubeClient } from "../kube/KubeClient.js"
import { isConflict, isNotFound, type KubeError } from "../kube/KubeError.js"

// ---------------------------------------------------------------------------------------------------
// The pure rules
// ---------------------------------------------------------------------------------------------------

/** What a Lease's spec says, normalised (client-go's `LeaderElectionRecord`). */
export interface LeaseRecord {
  /** Empty: nobody holds the lease (never acquired, or released). */
  readonly holderIdentity: string
  readonly leaseDurationSeconds: number
  /** MicroTime text as written (`2026-11-25T10:00:00.123000Z`), `undefined` when absent. */
  readonly acquireTime: string | undefined
  readonly renewTime: string | undefined
  readonly leaseTransitions: number
}

/** A record together with the time, on our clock, when we first saw it in this exact state. */
export interface Observation {
  readonly record: LeaseRecord
  readonly observedAt: number
}

export const sameRecord = (a: LeaseRecord, b: LeaseRecord): boolean =>
  a.holderIdentity === b.holderIdentity &&
  a.leaseDurationSeconds === b.leaseDurationSeconds &&
  a.acquireTime === b.acquireTime &&
  a.renewTime === b.renewTime &&
  a.leaseTransitions === b.leaseTransitions

/**
 * The observation after reading `record` at `now`: the clock only restarts when the record changed.
 * A record read again unchanged keeps its first `observedAt`, which is what lets a holder that
 * stopped renewing expire; a renewal (new `renewTime`) restarts it.
 */
export const observe = (
  previous: Option.Option<Observation>,
  record: LeaseRecord,
  now: number,
): Observation =>
  Option.isSome(previous) && sameRecord(previous.value.record, record)
    ? previous.value
    : { record, observedAt: now }

/** When, on our clock, the observed lease expires: `observedAt + leaseDurationSeconds`. */
export const expiresAt = (observation: Observation): number =>
  observation.observedAt + observation.record.leaseDurationSeconds * 1000

/** Expired from `expiresAt` on (client-go: valid while `observedTime + duration` is after now). */
export const isExpired = (observation: Observation, now: number): boolean => now >= expiresAt(observation)

export type Decision = Data.TaggedEnum<{
  /** No Lease object: create it. */
  Create: {}
  /** We hold it: renew (same acquireTime and transitions). */
  Renew: {}
  /** Free (released) or expired: take it over (new acquireTime, one more transition). */
  TakeOver: { readonly previousHolder: string }
  /** Somebody else holds a valid lease: wait. */
  Wait: { readonly holder: string; readonly expiresAt: number }
}>
export const Decision = Data.taggedEnum<Decision>()

/** "May I take this lease at time `now`?" — the whole acquisition rule of client-go. */
export const decide = (identity: string, observation: Option.Option<Observation>, now: number): Decision => {
  if (Option.isNone(observation)) return Decision.Create()
  const { record } = observation.value
  if (record.holderIdentity === identity) return Decision.Renew()
  if (record.holderIdentity === "" || isExpired(observation.value, now))
    return Decision.TakeOver({ previousHolder: record.holderIdentity })
  return Decision.Wait({ holder: record.holderIdentity, expiresAt: expiresAt(observation.value) })
}

/** Lease durations are whole seconds on the wire: round up, at least 1. */
export const leaseDurationSeconds = (leaseDuration: Duration.DurationInput): number =>
  Math.max(1, Math.ceil(Duration.toMillis(Duration.decode(leaseDuration)) / 1000))

/**
 * `metav1.MicroTime` text: RFC 3339 with exactly six fractional digits. The API server parses it
 * with a fixed-width layout, so the three digits of `toISOString` would be rejected.
 */
export const microTime = (epochMillis: number): string =>
  new Date(epochMillis).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z")

/** The record to write for a Create, Renew or TakeOver decision made by `identity` at `now`. */
export const nextRecord = (
  decision: Decision,
  identity: string,
  observed: Option.Option<LeaseRecord>,
  durationSeconds: number,
  now: number,
): LeaseRecord => {
  const time = microTime(now)
  const previous = Option.getOrUndefined(observed)
  switch (decision._tag) {
    case "Renew":
      return {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: previous?.acquireTime ?? time,
        renewTime: time,
        leaseTransitions: previous?.leaseTransitions ?? 0,
      }
    case "Create":
    case "TakeOver":
    case "Wait":
      return {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: time,
        renewTime: time,
        leaseTransitions: previous === undefined ? 0 : previous.leaseTransitions + 1,
      }
  }
}

/** What a leader writes when it steps down: nobody holds it, and it is as good as expired. */
export const releasedRecord = (current: LeaseRecord, now: number): LeaseRecord => ({
  holderIdentity: "",
  leaseDurationSeconds: 1,
  acquireTime: microTime(now),
  renewTime: microTime(now),
  leaseTransitions: current.leaseTransitions,
})

// ---------------------------------------------------------------------------------------------------
// Errors and the service
// ---------------------------------------------------------------------------------------------------

/** This process led and no longer does: stop sending at once. */
export class LeadershipLost extends Data.TaggedError("LeadershipLost")<{
  readonly lease: string
  readonly identity: string
  readonly reason: "RenewDeadlineExceeded" | "TakenOver"
  readonly message: string
}> {}

/** One request about the Lease failed (logged and retried by the loops, never fatal on its own). */
export class LeaseRequestError extends Data.TaggedError("LeaseRequestError")<{
  readonly lease: string
  readonly operation: "get" | "create" | "update"
  readonly conflict: boolean
  readonly message: string
  readonly cause: KubeError
}> {}

export interface LeaderElectionOptions {
  readonly namespace: string
  /** Name of the Lease. */
  readonly name: string
  readonly identity: string
  readonly leaseDuration: Duration.DurationInput
  readonly renewDeadline: Duration.DurationInput
  readonly retryPeriod: Duration.DurationInput
}

/** Holding the lease, for the lifetime of the scope `awaitLeadership` ran in. */
export interface Leadership {
  /** Completes when leadership is lost; never completes while it is held. */
  readonly lost: Effect.Effect<LeadershipLost>
  readonly isLeader: Effect.Effect<boolean>
}

export interface LeaderElectionShape {
  readonly identity: string
  /** `namespace/name` of the Lease. */
  readonly lease: string
  /**
   * Waits (retrying every `retryPeriod`, jittered) until this process holds the lease, then keeps
   * renewing it in the background for as long as the scope is open. Closing the scope stops the
   * renewals and releases the lease if we still hold it.
   */
  readonly awaitLeadership: Effect.Effect<Leadership, never, Scope.Scope>
}

export class LeaderElection extends Context.Tag("k8s-vectordb-sync/LeaderElection")<
  LeaderElection,
  LeaderElectionShape
>() {
  static readonly make = (options: LeaderElectionOptions) => make(options)
  static readonly layer = (options: LeaderElectionOptions): Layer.Layer<LeaderElection, never, KubeClient> =>
    Layer.effect(LeaderElection, make(options))
  /** From `SyncConfig.leaderElection`, with the namespace and identity resolved as documented. */
  static readonly layerConfig: Layer.Layer<LeaderElection, never, SyncConfig | KubeClient> =
    Layer.unwrapEffect(
      Effect.map(SyncConfig, (config) => LeaderElection.layer(optionsFromConfig(config.leaderElection))),
    )
}

/**
 * Runs `effect` while this process leads: waits for the lease first, and when leadership is lost
 * interrupts `effect` and fails with `LeadershipLost`. Interrupting runs `effect`'s finalizers: an
 * embedding program whose finalizers send must check `isLeader` there, or use {@link leadershipLayer}
 * with an `onLost` that stops the process.
 */
export const runAsLeader = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | LeadershipLost, R | LeaderElection> =>
  Effect.scoped(
    Effect.gen(function* () {
      const election = yield* LeaderElection
      const leadership = yield* election.awaitLeadership
      return yield* Effect.raceFirst(effect, Effect.flatMap(leadership.lost, Effect.fail))
    }),
  )

// ---------------------------------------------------------------------------------------------------
// The Lease on the API server
// ---------------------------------------------------------------------------------------------------

const OptionalString = Schema.optional(Schema.NullOr(Schema.String))
const OptionalNumber = Schema.optional(Schema.NullOr(Schema.Number))
const Extra = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** The fields of a Lease we read; every other field is kept as is and written back unchanged. */
export const Lease = Schema.Struct(
  {
    metadata: Schema.Struct({ resourceVersion: Schema.String }, Extra),
    spec: Schema.optional(
      Schema.NullOr(
        Schema.Struct(
          {
            holderIdentity: OptionalString,
            leaseDurationSeconds: OptionalNumber,
            acquireTime: OptionalString,
            renewTime: OptionalString,
            leaseTransitions: OptionalNumber,
          },
          Extra,
        ),
      ),
    ),
  },
  Extra,
)
export type Lease = typeof Lease.Type

export const recordOf = (lease: Lease): LeaseRecord => ({
  holderIdentity: lease.spec?.holderIdentity ?? "",
  leaseDurationSeconds: lease.spec?.leaseDurationSeconds ?? 0,
  acquireTime: lease.spec?.acquireTime ?? undefined,
  renewTime: lease.spec?.renewTime ?? undefined,
  leaseTransitions: lease.spec?.leaseTransitions ?? 0,
})

const specOf = (record: LeaseRecord) => ({
  holderIdentity: record.holderIdentity,
  leaseDurationSeconds: record.leaseDurationSeconds,
  ...(record.acquireTime === undefined ? {} : { acquireTime: record.acquireTime }),
  ...(record.renewTime === undefined ? {} : { renewTime: record.renewTime }),
  leaseTransitions: record.leaseTransitions,
})

/** The three operations leader election needs; `leaseStore` implements them on a `KubeClient`. */
export interface LeaseStore {
  readonly get: Effect.Effect<Option.Option<Lease>, LeaseRequestError>
  readonly create: (record: LeaseRecord) => Effect.Effect<Lease, LeaseRequestError>
  /** PUT with `current`'s resourceVersion: fails with `conflict: true` when somebody wrote first. */
  readonly update: (current: Lease, record: LeaseRecord) => Effect.Effect<Lease, LeaseRequestError>
}

export const leaseStore = (
  kube: Context.Tag.Service<KubeClient>,
  namespace: string,
  name: string,
  requestTimeout: Duration.DurationInput,
): LeaseStore => {
  const lease = `${namespace}/${name}`
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`
  const path = `${collection}/${encodeURIComponent(name)}`
  const failed = (operation: LeaseRequestError["operation"]) => (cause: KubeError) =>
    new LeaseRequestError({
      lease,
      operation,
      conflict: isConflict(cause),
      message: `${operation} lease ${lease}: ${cause.message}`,
      cause,
    })
  return {
    get: kube.get(path, { schema: Lease, timeout: requestTimeout }).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<Lease>())),
      Effect.mapError(failed("get")),
    ),
    create: (record) =>
      kube
        .post(
          collection,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: specOf(record),
          },
          { schema: Lease, timeout: requestTimeout },
        )
        .pipe(Effect.mapError(failed("create"))),
    update: (current, record) =>
      kube
        .put(
          path,
          { ...current, spec: { ...current.spec, ...specOf(record) } },
          { schema: Lease, timeout: requestTimeout },
        )
        .pipe(Effect.mapError(failed("update"))),
  }
}

// ---------------------------------------------------------------------------------------------------
// The loops
// ---------------------------------------------------------------------------------------------------

const WATCHDOG_TICK = Duration.millis(100)

type Attempt =
  /** We hold the lease; `startedAt` is when the successful attempt began (the renewal's age). */
  | { readonly _tag: "Held"; readonly startedAt: number }
  | { readonly _tag: "HeldByOther"; readonly holder: string; readonly expiresAt: number }

interface ElectorState {
  readonly observed: Option.Option<Observation>
  /** The Lease object last read or written: its resourceVersion is what the next PUT sends. */
  readonly lease: Option.Option<Lease>
}

/**
 * The elector for one identity and one Lease over a `LeaseStore`: exposed for tests, which drive it
 * with an in-memory store under `TestClock`.
 */
export const makeElector = (options: LeaderElectionOptions, store: LeaseStore) =>
  Effect.gen(function* () {
    const { identity } = options
    const lease = `${options.namespace}/${options.name}`
    const durationSeconds = leaseDurationSeconds(options.leaseDuration)
    const renewDeadlineMs = Duration.toMillis(Duration.decode(options.renewDeadline))
    const retryPeriod = Duration.decode(options.retryPeriod)
    const state = yield* Ref.make<ElectorState>({ observed: Option.none(), lease: Option.none() })
    // Whether we ever wrote the lease as its holder: only then is there anything to release.
    const wrote = yield* Ref.make(false)

    const remember = (written: Lease, now: number) =>
      Ref.set(state, {
        lease: Option.some(written),
        observed: Option.some({ record: recordOf(written), observedAt: now }),
      })

    /** client-go's `tryAcquireOrRenew`: one read, and one write when the rules allow it. */
    const tryAcquireOrRenew: Effect.Effect<Attempt, LeaseRequestError> = Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const current = yield* store.get
      const now = yield* Clock.currentTimeMillis
      const previous = yield* Ref.get(state)
      const observed = Option.map(current, (l) => observe(previous.observed, recordOf(l), now))
      yield* Ref.set(state, { observed, lease: current })
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
     * Keeps the lease renewed: one attempt every `retryPeriod`. Succeeds with `LeadershipLost`
     * once no attempt has succeeded for `renewDeadline` (counted from the start of the last
     * successful one, kept in `renewedAt`), or at once when another holder shows up.
     */
    const renewUntilLost = (renewedAt: Ref.Ref<number>): Effect.Effect<LeadershipLost> =>
      Effect.gen(function* () {
        while (true) {
          yield* Effect.sleep(retryPeriod)
          const remaining = (yield* Ref.get(renewedAt)) + renewDeadlineMs - (yield* Clock.currentTimeMillis)
          if (remaining <= 0) return deadlineExceeded
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
          if (Option.isNone(outcome)) return deadlineExceeded
          if (outcome.value._tag === "HeldByOther")
            return new LeadershipLost({
              lease,
              identity,
              reason: "TakenOver",
              message: `lease ${lease} is now held by ${outcome.value.holder}`,
            })
          yield* Ref.set(renewedAt, outcome.value.startedAt)
        }
      })

    /**
     * Checks the deadline on a short tick, without I/O. The renewal loop alone would notice a
     * deadline that passed while the process was frozen (SIGSTOP, a VM paused, a long GC) only when
     * its own timer fires, and after a freeze timers fire in the order they were due: a batch that
     * came due meanwhile could be sent first. This timer is always among the first to fire.
     */
    const watchdog = (renewedAt: Ref.Ref<number>): Effect.Effect<LeadershipLost> =>
      Effect.gen(function* () {
        const tick = Duration.min(WATCHDOG_TICK, retryPeriod)
        while (true) {
          yield* Effect.sleep(tick)
          if ((yield* Clock.currentTimeMillis) >= (yield* Ref.get(renewedAt)) + renewDeadlineMs)
            return deadlineExceeded
        }
      })

    /** Steps down if we still hold the lease (read fresh: never overwrite another holder). */
    const release: Effect.Effect<boolean> = Effect.gen(function* () {
      const current = yield* store.get
      if (Option.isNone(current)) return false
      const record = recordOf(current.value)
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

    const awaitLeadership: Effect.Effect<Leadership, never, Scope.Scope> = Effect.gen(function* () {
      const lost = yield* Deferred.make<LeadershipLost>()
      // Registered before acquiring, so that an interruption right after a successful write still
      // releases; `release` reads the lease first and never overwrites another holder.
      yield* Effect.addFinalizer(() =>
        Effect.all([Ref.get(wrote), Deferred.isDone(lost)]).pipe(
          Effect.flatMap(([written, isLost]) => (written && !isLost ? release : Effect.void)),
        ),
      )
      yield* Effect.logInfo("waiting for the leader-election lease").pipe(
        Effect.annotateLogs({ lease, identity }),
      )
      const acquiredAt = yield* acquire
      yield* Effect.logInfo("leading").pipe(Effect.annotateLogs({ lease, identity }))
      // Runs until leadership is lost or the scope closes; closing interrupts it before the release
      // above runs (finalizers run in reverse order), so no renewal races the release.
      const renewedAt = yield* Ref.make(acquiredAt)
      yield* Effect.raceFirst(renewUntilLost(renewedAt), watchdog(renewedAt)).pipe(
        Effect.flatMap((reason) => Deferred.succeed(lost, reason)),
        Effect.forkScoped,
      )
      return {
        lost: Deferred.await(lost),
        isLeader: Effect.map(Deferred.isDone(lost), (done) => !done),
      }
    })

    return { identity, lease, awaitLeadership, tryAcquireOrRenew, release } as const
  })

const make = (options: LeaderElectionOptions): Effect.Effect<LeaderElectionShape, never, KubeClient> =>
  Effect.gen(function* () {
    const kube = yield* KubeClient
    // A request must never outlive the renew deadline it counts against.
    const store = leaseStore(kube, options.namespace, options.name, options.renewDeadline)
    const elector = yield* makeElector(options, store)
    return LeaderElection.of({
      identity: elector.identity,
      lease: elector.lease,
      awaitLeadership: elector.awaitLeadership,
    })
  })

// ---------------------------------------------------------------------------------------------------
// Configuration and the process
// ---------------------------------------------------------------------------------------------------

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

/** The namespace the pod runs in (service-account mount), else `default`. */
export const inClusterNamespace = (): string => {
  try {
    const namespace = readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim()
    return namespace === "" ? "default" : namespace
  } catch {
    return "default"
  }
}

/** `POD_NAME` (or the hostname) plus a random suffix: unique per process, readable in the Lease. */
export const processIdentity = (env: NodeJS.ProcessEnv = process.env): string => {
  const base = env.POD_NAME?.trim() || hostname()
  return `${base}_${randomUUID()}`
}

export const optionsFromConfig = (
  config: LeaderElectionConfig,
  identity: string = processIdentity(),
): LeaderElectionOptions => ({
  namespace: Option.getOrElse(config.namespace, inClusterNamespace),
  name: config.id,
  identity,
  leaseDuration: config.leaseDuration,
  renewDeadline: config.renewDeadline,
  retryPeriod: config.retryPeriod,
})

/** `/healthz` and `/readyz` of a standby, on the health probe address, while it waits. */
const standbyProbes = (lease: string) =>
  Layer.unwrapEffect(
    Effect.map(SyncConfig, (config) =>
      HttpServer.serve(
        HttpRouter.empty.pipe(
          HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
          HttpRouter.get(
            "/readyz",
            HttpServerResponse.text(`standby: waiting for the leader-election lease ${lease}`),
          ),
        ),
      ).pipe(
        Layer.provide(
          NodeHttpServer.layer(() => createServer(), {
            port: config.healthProbeBindAddress.port,
            ...(config.healthProbeBindAddress.host === undefined
              ? {}
              : { host: config.healthProbeBindAddress.host }),
          }),
        ),
        Layer.catchAll((error) => Layer.die(error)),
      ),
    ),
  )

/**
 * For the process: with `LEADER_ELECTION=true`, building this Layer waits until this process leads
 * (answering the health probes as a standby meanwhile), and closing it releases the lease. Build it
 * before the controller (`Layer.provide` it to the controller's Layer) so that the controller starts
 * only once leading and has shut down (final flush included) before the lease is released. When
 * leadership is lost, `onLost` runs at once; the controller is not interrupted. With
 * `LEADER_ELECTION=false` it is empty.
 */
export const leadershipLayer = (options: {
  readonly onLost: (lost: LeadershipLost) => Effect.Effect<void>
}): Layer.Layer<never, never, SyncConfig | KubeClient> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const config = yield* SyncConfig
      if (!config.leaderElection.enabled) return
      const election = yield* LeaderElection.make(optionsFromConfig(config.leaderElection))
      const probes = yield* Scope.make()
      yield* Layer.buildWithScope(standbyProbes(election.lease), probes)
      const leadership = yield* election.awaitLeadership.pipe(Effect.ensuring(Scope.close(probes, Exit.void)))
      yield* leadership.lost.pipe(Effect.flatMap(options.onLost), Effect.forkScoped)
    }),
  )

/** Logs the loss and exits with code 1 at once: no finalizer, so no final flush, runs. */
export const exitProcess = (lost: LeadershipLost): Effect.Effect<void> =>
  Effect.logError("leadership lost: exiting at once without flushing").pipe(
    Effect.annotateLogs({
      lease: lost.lease,
      identity: lost.identity,
      reason: lost.reason,
      error: lost.message,
    }),
    Effect.zipRight(Effect.sync(() => process.exit(1))),
  )

/** What `main.ts` builds before the controller. */
export const processLayer: Layer.Layer<never, never, SyncConfig | KubeClient> = leadershipLayer({
  onLost: exitProcess,
})
