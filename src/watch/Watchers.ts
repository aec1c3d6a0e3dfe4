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
import { groupOf } from "./DiscoveryResult.js"
import * as Feed from "./Feed.js"
import * as ListSlots from "./ListSlots.js"
import * as NamespaceOptOuts from "./NamespaceOptOuts.js"
import * as ObjectFilter from "./ObjectFilter.js"
import { type RelistOutcome, relistTypes } from "./Relist.js"
import * as Store from "./Store.js"
import * as TypeStatuses from "./TypeStatus.js"
import * as TypeWatch from "./TypeWatch.js"
import type { Metadata } from "./WatchEvent.js"
import type { WatchTarget } from "./WatchTarget.js"

export interface DiscoveredType extends WatchTarget {
  /** Stable name of the type (`deployments.apps`, `configmaps`). */
  readonly key: string
}

export interface Discovered {
  readonly types: ReadonlyArray<DiscoveredType>
  /** Group-versions that could not be discovered this time; retried sooner than the timer. */
  readonly failures: ReadonlyArray<{ readonly groupVersion: string; readonly error: string }>
}

export type { RelistOutcome } from "./Relist.js"
export type { ListProgress, TypePhase, TypeStatus } from "./TypeStatus.js"

export interface WatchersOptions {
  /** Discovery, already filtered by the allow and block lists. */
  readonly discover: Effect.Effect<Discovered, KubeError, KubeClient>
  /** Where changes go, a batch at a time, in order: never blocks. */
  readonly discoveryInterval: Duration.DurationInput
  /** A type that has not listed within this time of its start stops holding up readiness. */
  readonly readinessGrace?: Duration.DurationInput
  /**
   * How long after a discovery that lacks a watched type a second one must confirm its absence
   * before the type's watch stops and its objects are deleted downstream. Default 5 s.
   */
  readonly removalConfirmation?: Duration.DurationInput
  /** Most LIST requests in flight at once, over every type. Default 10. */
  readonly listConcurrency?: number
  /** Interval of the `listed N of M types` log line while initial lists are incomplete. Default 5 s. */
  readonly progressInterval?: Duration.DurationInput
  readonly typeWatch?: TypeWatch.TypeWatchOptions
  /** Which objects are synced (namespaces, opt-out annotation); default: every object. */
  readonly objectFilter?: ObjectFilter.ObjectFilter
  /** Which labels and annotations records keep; default: the payload contract's. */
  readonly recordKeys?: RecordKeys
}

export interface WatchersShape {
  readonly status: Effect.Effect<ReadonlyArray<TypeStatuses.TypeStatus>>
  readonly progress: Effect.Effect<TypeStatuses.ListProgress>
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
    const removalConfirmation = options.removalConfirmation ?? Duration.seconds(5)

    const statuses = TypeStatuses.make()
    // Both gauges exist from the start, so that dashboards and alerts see 0 rather than no series.
    yield* Metric.set(forbiddenTypes, 0)
    yield* Metric.set(watchedTypes, 0)
    const listConcurrency = options.listConcurrency ?? 10
    const listSlots = yield* ListSlots.make(listConcurrency)
    const objectFilter = options.objectFilter ?? ObjectFilter.all
    const optOuts = yield* NamespaceOptOuts.make({
      watchList: options.typeWatch?.watchList ?? true,
      listSlots,
    })
    const admits = (meta: Metadata) =>
      objectFilter.admits(meta) && (meta.namespace === undefined || !optOuts.has(meta.namespace))
    const typeWatchOptions: TypeWatch.TypeWatchOptions = {
      ...options.typeWatch,
      listSlots,
      ...(objectFilter.onlyNamespace === undefined ? {} : { namespace: objectFilter.onlyNamespace }),
    }

    const feed = Feed.make({ offer, update: statuses.update })
    const makeTypeWatch = TypeWatch.maker(typeWatchOptions)

    const start = (type: DiscoveredType) =>
      Effect.gen(function* () {
        const id = identity(type)
        const watch = yield* makeTypeWatch(type)
        const store = Store.make(type, admits, options.recordKeys)
        const startedAt = yield* Clock.currentTimeMillis
        running.set(id, { watch, store })
        yield* statuses.add(id, {
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
        // Objects of opted-out namespaces must not be sent, even for a moment: wait for their list.
        // Forked with no services in its context, since it needs none: every scope in a type's
        // stream captures the fiber's context and diffs it when it closes, which at a thousand
        // types and a context of the whole controller made stopping cost most of a second.
        yield* FiberMap.run(fibers, id, Effect.zipRight(optOuts.known, feed(id, type, watch, store))).pipe(
          Effect.mapInputContext((_: Context.Context<never>) => Context.empty()),
        )
      })

    /** The type is gone from the server: its objects are gone too, whatever the watch last saw. */
    const stop = (id: string) =>
      Effect.gen(function* () {
        yield* FiberMap.remove(fibers, id)
        const entry = running.get(id)
        running.delete(id)
        yield* statuses.remove(id)
        if (entry === undefined) return
        const ids = Store.knownIds(entry.store)
        yield* offer(ids.map((objectId) => Change.remove(objectId)))
        yield* Effect.logInfo("stopped watching a type that is no longer served").pipe(
          Effect.annotateLogs({ type: id, deleted: ids.length }),
        )
      })

    // A type missing from one discovery answer is not taken as gone (its objects would all be
    // deleted downstream and sent again when it reappears): a second discovery, a little later,
    // must miss it too. Types of a group that failed discovery are kept until discovery says
    // otherwise.
    const missingFrom = (discovered: Discovered) => {
      const wanted = new Set(discovered.types.map(identity))
      const failedGroups = new Set(discovered.failures.map((f) => groupOf(f.groupVersion)))
      return [...running]
        .filter(([id, { watch }]) => !wanted.has(id) && !failedGroups.has(watch.target.group))
        .map(([id]) => id)
    }

    const reconcile = Effect.gen(function* () {
      const discovered = yield* options.discover
      if (discovered.types.length === 0) {
        // Readiness needs at least one watched type: say why it will not come.
        yield* Effect.logWarning(
          "no resource type selected: check WATCH_RESOURCE_TYPES / EXCLUDE_RESOURCE_TYPES against the served types",
        )
      }
      for (const type of discovered.types) if (!running.has(identity(type))) yield* start(type)
      const missing = missingFrom(discovered)
      let failures = discovered.failures
      if (missing.length > 0) {
        yield* Effect.logInfo("types missing from discovery; confirming before they are removed").pipe(
          Effect.annotateLogs({ types: missing.join(",") }),
        )
        yield* Effect.sleep(removalConfirmation)
        const again = yield* options.discover
        const stillMissing = new Set(missingFrom(again))
        for (const id of missing) if (stillMissing.has(id)) yield* stop(id)
        failures = again.failures
      }
      yield* Metric.set(watchedTypes, running.size)
      for (const failure of failures) {
        yield* Effect.logWarning("discovery failed for a group-version; the rest is watched").pipe(
          Effect.annotateLogs(failure),
        )
      }
      return failures.length > 0
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

    // A namespace opted out or in again: the namespaced types list afresh, which deletes (or sends)
    // that namespace's objects in each type's own order.
    yield* optOuts.changes.pipe(
      Stream.debounce(Duration.seconds(1)),
      Stream.runForEach((optedOut) =>
        Effect.logInfo("namespaces opted out changed; relisting namespaced types").pipe(
          Effect.annotateLogs({ optedOut: [...optedOut].join(",") }),
          Effect.zipRight(
            relistTypes(
              Array.from(running.values(), ({ watch }) => watch).filter((watch) => watch.target.namespaced),
              { timeout: Duration.minutes(2), concurrency: listConcurrency },
            ),
          ),
        ),
      ),
      Effect.forkScoped,
    )

    yield* Effect.forkScoped(
      TypeStatuses.logProgress(statuses, options.progressInterval ?? Duration.seconds(5)),
    )
    const relistAll = (timeout: Duration.DurationInput) =>
      relistTypes(
        Array.from(running.values(), ({ watch }) => watch),
        { timeout, concurrency: listConcurrency },
      )
    return {
      status: statuses.all,
      progress: statuses.progress,
      relistAll,
      knownIds: Effect.map(
        Effect.sync(() => [...running.values()].map(({ store }) => Store.knownIds(store))),
        (lists) => new Set(lists.flat()),
      ),
      rediscover: Effect.asVoid(rediscover),
      ready: statuses.ready(grace),
    } satisfies WatchersShape
  })

export class Watchers extends Context.Tag("k8s-vectordb-sync/Watchers")<Watchers, WatchersShape>() {
  static readonly make = make

  /** Watches stop when the layer is released; pending changes stay with the pipeline. */
  static readonly layer = (
    options: WatchersOptions,
  ): Layer.Layer<Watchers, never, KubeClient | ChangeQueue | Crds> => Layer.scoped(Watchers, make(options))
}
