/**
 * The live set of watched types: per discovered type, one fiber reading its `TypeWatch` stream into
 * its `Store` and on into the `ChangeQueue`. Discovery runs again when a CRD changes (`Crds`) and on
 * a slow timer, and watches start and stop to match; the objects of a type that went away are
 * deleted downstream.
 *
 * It also keeps what `/readyz` and the logs need: per type, whether the initial list completed,
 * the last error, and how often the watch restarted.
 */
import {
  Clock,
  Context,
  Duration,
  Effect,
  FiberMap,
  Layer,
  Metric,
  Option,
  Queue,
  Schedule,
  type Scope,
  Stream,
} from "effect"
import type { KubeClient } from "../kube/KubeClient.js"
import type { KubeError } from "../kube/KubeError.js"
import { forbiddenTypes, watchedTypes } from "../metrics/Metrics.js"
import * as Change from "../record/Change.js"
import { ChangeQueue } from "../record/ChangeQueue.js"
import { apiVersionOf } from "../record/Instance.js"
import type { RecordKeys } from "../record/KeyFilter.js"
import * as Backoff from "../schedule/Backoff.js"
import { Crds } from "./Crds.js"
import { groupOf, typeKey } from "./Discovery.js"
import * as Feed from "./Feed.js"
import * as ListSlots from "./ListSlots.js"
import * as Store from "./Store.js"
import type { TypePhase, TypeStatus } from "./TypeStatus.js"
import * as TypeWatch from "./TypeWatch.js"
import type { WatchTarget } from "./Watcher.js"

export interface DiscoveredType extends WatchTarget {
  /** Stable name of the type (`deployments.apps`, `configmaps`). */
  readonly key: string
}

export interface Discovered {
  readonly types: ReadonlyArray<DiscoveredType>
  /** Group-versions that could not be discovered this time; retried sooner than the timer. */
  readonly failures: ReadonlyArray<{ readonly groupVersion: string; readonly error: string }>
}

export type { TypePhase, TypeStatus } from "./TypeStatus.js"

export interface WatchersOptions {
  /** Discovery, already filtered by the allow and block lists. */
  readonly discover: Effect.Effect<Discovered, KubeError, KubeClient>
  /** Where changes go, a batch at a time, in order: never blocks. */
  readonly discoveryInterval: Duration.DurationInput
  /** A type that has not listed within this time of its start stops holding up readiness. */
  readonly readinessGrace?: Duration.DurationInput
  /** Most LIST requests in flight at once, over every type. Default 10. */
  readonly listConcurrency?: number
  /** Interval of the `listed N of M types` log line while initial lists are incomplete. Default 5 s. */
  readonly progressInterval?: Duration.DurationInput
  readonly typeWatch?: TypeWatch.TypeWatchOptions
  /** Which labels and annotations records keep; default: the payload contract's. */
  readonly recordKeys?: RecordKeys
}

/** Initial lists: how many of the watched types have listed once (or are forbidden). */
export interface ListProgress {
  readonly listed: number
  readonly forbidden: number
  readonly total: number
}

export interface WatchersShape {
  readonly status: Effect.Effect<ReadonlyArray<TypeStatus>>
  readonly progress: Effect.Effect<ListProgress>
  /** Every type has listed once (or is forbidden, or has failed for longer than the grace). */
  readonly ready: Effect.Effect<boolean>
  /** Runs discovery again now and starts or stops watches to match. */
  readonly rediscover: Effect.Effect<void>
  /**
   * Lists every watched type afresh, in parallel: upserts for all objects, deletes for those that
   * vanished. A type that does not complete its list within `timeout` is reported, not waited for.
   */
  readonly relistAll: (timeout: Duration.DurationInput) => Effect.Effect<RelistOutcome>
  /** Ids of every object the watches currently know to exist. */
  readonly knownIds: Effect.Effect<ReadonlySet<string>>
}

export interface RelistOutcome {
  readonly types: number
  readonly objects: number
  readonly deletes: number
  /** Types whose list did not complete in time (failing, forbidden). */
  readonly incomplete: ReadonlyArray<string>
}

/** Same group/resource served at another version counts as another type: its ids differ. */
const identity = (type: DiscoveredType) => `${type.key}@${type.version}`

export const make = (
  options: WatchersOptions,
): Effect.Effect<WatchersShape, never, KubeClient | ChangeQueue | Crds | Scope.Scope> =>
  Effect.gen(function* () {
    const changes = yield* ChangeQueue
    const offer = (batch: ReadonlyArray<Change.Change>) => Queue.offer(changes, batch)
    const fibers = yield* FiberMap.make<string>()
    const running = new Map<string, { readonly watch: TypeWatch.TypeWatch; readonly store: Store.Store }>()
    const grace = Duration.toMillis(options.readinessGrace ?? Duration.minutes(2))

    // One entry per type, replaced whole on change: readers get consistent snapshots of an entry,
    // and an update costs O(1) however many types there are (a copy of the map per update made the
    // start-up with a thousand types quadratic).
    const statuses = new Map<string, TypeStatus>()
    const update = (id: string, f: (status: TypeStatus) => TypeStatus) =>
      Effect.suspend(() => {
        const current = statuses.get(id)
        if (current === undefined) return Effect.void
        const next = f(current)
        statuses.set(id, next)
        // Counted again only when a type enters or leaves "forbidden": recounting on every change of
        // phase made a thousand types' first lists quadratic.
        return current.phase !== next.phase && (current.phase === "forbidden" || next.phase === "forbidden")
          ? Metric.set(forbiddenTypes, countPhase("forbidden"))
          : Effect.void
      })
    const countPhase = (phase: TypePhase) => {
      let n = 0
      for (const s of statuses.values()) if (s.phase === phase) n++
      return n
    }
    const listSlots = yield* ListSlots.make(options.listConcurrency ?? 10)
    const typeWatchOptions: TypeWatch.TypeWatchOptions = { ...options.typeWatch, listSlots }

    const feed = Feed.make({ offer, update })

    const start = (type: DiscoveredType) =>
      Effect.gen(function* () {
        const id = identity(type)
        const watch = yield* TypeWatch.make(type, typeWatchOptions)
        const store = Store.make(type, options.recordKeys)
        const startedAt = yield* Clock.currentTimeMillis
        running.set(id, { watch, store })
        statuses.set(id, {
          key: type.key,
          apiVersion: apiVersionOf(type),
          kind: type.kind,
          phase: "listing",
          synced: false,
          startedAt,
          objects: 0,
          restarts: 0,
          lastError: Option.none(),
        })
        yield* FiberMap.run(fibers, id, feed(id, type, watch, store))
      })

    /** The type is gone from the server: its objects are gone too, whatever the watch last saw. */
    const stop = (id: string) =>
      Effect.gen(function* () {
        yield* FiberMap.remove(fibers, id)
        const entry = running.get(id)
        running.delete(id)
        statuses.delete(id)
        if (entry === undefined) return
        const ids = Store.knownIds(entry.store)
        yield* offer(ids.map((objectId) => Change.remove(objectId)))
        yield* Effect.logInfo("stopped watching a type that is no longer served").pipe(
          Effect.annotateLogs({ type: id, deleted: ids.length }),
        )
      })

    const reconcile = Effect.gen(function* () {
      const discovered = yield* options.discover
      const wanted = new Map(discovered.types.map((type) => [identity(type), type]))
      if (wanted.size === 0) {
        // Readiness needs at least one watched type: say why it will not come.
        yield* Effect.logWarning(
          "no resource type selected: check WATCH_RESOURCE_TYPES / EXCLUDE_RESOURCE_TYPES against the served types",
        )
      }
      // A group that failed discovery this time has not gone away: keep its watches (and its objects
      // downstream) until discovery says otherwise.
      const failedGroups = new Set(discovered.failures.map((f) => groupOf(f.groupVersion)))
      for (const [id, { watch }] of [...running]) {
        if (!wanted.has(id) && !failedGroups.has(watch.target.group)) yield* stop(id)
      }
      for (const [id, type] of wanted) if (!running.has(id)) yield* start(type)
      yield* Metric.set(watchedTypes, running.size)
      for (const failure of discovered.failures) {
        yield* Effect.logWarning("discovery failed for a group-version; the rest is watched").pipe(
          Effect.annotateLogs(failure),
        )
      }
      return discovered.failures.length > 0
    })

    // Serialised: a CRD event and the timer never reconcile at the same time.
    const lock = yield* Effect.makeSemaphore(1)
    const context = yield* Effect.context<KubeClient>()
    const rediscover = lock.withPermits(1)(
      reconcile.pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning("discovery failed; retrying").pipe(
              Effect.annotateLogs({ error: error.message }),
            ),
            true,
          ),
        ),
        Effect.provide(context),
      ),
    )

    // CRD changes (created, Established, versions changed, deleted) are what makes types appear and
    // vanish; a short debounce lets a burst of them cause one discovery.
    const crds = yield* Crds
    const crdChanges = crds.events.pipe(Stream.debounce(Duration.seconds(1)))
    // A failed (or partly failed) discovery is tried again soon, backing off to every 30 s, rather
    // than at the slow timer: at start-up the API server may simply not be there yet.
    const rediscoverUntilComplete = rediscover.pipe(
      Effect.repeat({
        schedule: Backoff.exponential({ initial: Duration.seconds(1), max: Duration.seconds(30) }),
        while: (failed) => failed,
      }),
    )
    const periodic = Stream.repeatEffectWithSchedule(Effect.void, Schedule.spaced(options.discoveryInterval))
    yield* Stream.merge(periodic, crdChanges).pipe(
      Stream.runForEach(() => rediscoverUntilComplete),
      Effect.forkScoped,
    )

    const status = Effect.sync(() => [...statuses.values()])
    const progress = Effect.sync((): ListProgress => {
      let listed = 0
      let forbidden = 0
      for (const s of statuses.values()) {
        if (s.synced) listed++
        else if (s.phase === "forbidden") forbidden++
      }
      return { listed, forbidden, total: statuses.size }
    })

    // Start-up with a thousand types takes a while: say how far it is until every type has listed.
    const progressInterval = options.progressInterval ?? Duration.seconds(5)
    yield* progress.pipe(
      Effect.flatMap((p) =>
        p.total > 0 && p.listed + p.forbidden < p.total
          ? Effect.logInfo(`listed ${p.listed} of ${p.total} types`).pipe(
              Effect.annotateLogs({ listed: p.listed, forbidden: p.forbidden, total: p.total }),
            )
          : Effect.void,
      ),
      Effect.repeat(Schedule.spaced(progressInterval)),
      Effect.delay(progressInterval),
      Effect.forkScoped,
    )
    const relistAll = (timeout: Duration.DurationInput) =>
      Effect.forEach(
        [...running.values()],
        ({ watch }) =>
          watch.relists.relist.pipe(
            Effect.timeoutOption(timeout),
            Effect.map((outcome) => ({
              key: typeKey(watch.target.group, watch.target.plural),
              outcome,
            })),
          ),
        { concurrency: 4 },
      ).pipe(
        Effect.map((results) => ({
          types: results.length,
          objects: results.reduce(
            (n, r) => n + Option.match(r.outcome, { onNone: () => 0, onSome: (o) => o.objects }),
            0,
          ),
          deletes: results.reduce(
            (n, r) => n + Option.match(r.outcome, { onNone: () => 0, onSome: (o) => o.deletes }),
            0,
          ),
          incomplete: results.filter((r) => Option.isNone(r.outcome)).map((r) => r.key),
        })),
      )
    return {
      status,
      progress,
      relistAll,
      knownIds: Effect.map(
        Effect.sync(() => [...running.values()].map(({ store }) => Store.knownIds(store))),
        (lists) => new Set(lists.flat()),
      ),
      rediscover: Effect.asVoid(rediscover),
      ready: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const all = yield* status
        return (
          running.size > 0 &&
          all.every(
            (s) =>
              s.synced || s.phase === "forbidden" || (s.phase === "failing" && now - s.startedAt > grace),
          )
        )
      }),
    } satisfies WatchersShape
  })

export class Watchers extends Context.Tag("k8s-vectordb-sync/Watchers")<Watchers, WatchersShape>() {
  static readonly make = make

  /** Watches stop when the layer is released; pending changes stay with the pipeline. */
  static readonly layer = (
    options: WatchersOptions,
  ): Layer.Layer<Watchers, never, KubeClient | ChangeQueue | Crds> => Layer.scoped(Watchers, make(options))
}
