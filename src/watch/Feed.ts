/**
 * A type's events, read into its store, its status and the change queue: the fiber each watched
 * type runs for as long as it is watched.
 */
import { type Chunk, Effect, LogLevel, Metric, Option } from "effect"
import { watchEvents, watchRestarts } from "../metrics/Metrics.js"
import type * as Change from "../record/Change.js"
import type * as Store from "./Store.js"
import type { TypeStatus } from "./TypeStatus.js"
import type * as TypeWatch from "./TypeWatch.js"
import type { WatchEvent } from "./WatchEvent.js"
import type { ListOutcome } from "./WatchStream.js"

/** What the feed needs to know of a type: its stable name, for metrics and logs. */
export interface TypeKey {
  readonly key: string
}

export interface FeedOptions {
  /** Hands a batch of changes on (to the `ChangeQueue`): back-pressures when it is full. */
  readonly offer: (changes: ReadonlyArray<Change.Change>) => Effect.Effect<unknown>
  /** Updates the status of the watch with this id. */
  readonly update: (id: string, f: (status: TypeStatus) => TypeStatus) => Effect.Effect<void>
}

/** A type's counts of the changes its events meant. */
interface EventCounters {
  readonly upserts: Metric.Metric.Counter<number>
  readonly deletes: Metric.Metric.Counter<number>
}

export const make = ({ offer, update }: FeedOptions) => {
  /**
   * Runs a type's events into its store and the change queue. The hot path works a chunk (one
   * network read) at a time: the changes go to the queue together, the counters move once per
   * chunk, and nothing is built per event unless debug logging is on. The watch's unfold runs
   * without a Stream channel (`TypeWatch.forEachChunk`): at a thousand mostly idle types, every
   * stage costs heap, and every start and stop a round through it.
   */
  const run = (id: string, type: TypeKey, watch: TypeWatch.TypeWatch, store: Store.Store) => {
    // Tagged on first use: most of a thousand watched types never see an event after their list.
    let counters: EventCounters | undefined
    const countersOf = () => {
      counters ??= {
        upserts: Metric.tagged(Metric.tagged(watchEvents, "type", type.key), "op", "Upsert"),
        deletes: Metric.tagged(Metric.tagged(watchEvents, "type", type.key), "op", "Delete"),
      }
      return counters
    }
    const handle = (chunk: Chunk.Chunk<WatchEvent>): Effect.Effect<void> => {
      const changes: Array<Change.Change> = []
      const effects: Array<Effect.Effect<void>> = []
      for (const event of chunk) {
        if (event._tag === "Error" || event._tag === "Restarted") {
          effects.push(onStatusEvent(id, type, event))
          continue
        }
        const listed = store.apply(event, changes)
        if (listed !== undefined) effects.push(onListed(id, type, watch, listed))
      }
      let handled = changes.length === 0 ? Effect.void : offerCounted(type, changes, countersOf())
      for (const effect of effects) handled = Effect.zipRight(handled, effect)
      return handled
    }
    return watch.forEachChunk(handle)
  }

  const offerCounted = (
    type: TypeKey,
    changes: ReadonlyArray<Change.Change>,
    { upserts, deletes }: EventCounters,
  ) => {
    let upserted = 0
    for (const change of changes) if (change._tag === "Upsert") upserted++
    return offer(changes).pipe(
      Effect.zipRight(upserted > 0 ? Metric.incrementBy(upserts, upserted) : Effect.void),
      Effect.zipRight(
        upserted < changes.length ? Metric.incrementBy(deletes, changes.length - upserted) : Effect.void,
      ),
      Effect.zipRight(Effect.whenLogLevel(logObserved(type, changes), LogLevel.Debug)),
    )
  }

  const logObserved = (type: TypeKey, changes: ReadonlyArray<Change.Change>) =>
    Effect.forEach(
      changes,
      (change) =>
        Effect.logDebug("observed").pipe(
          Effect.annotateLogs({
            type: type.key,
            op: change._tag,
            id: change._tag === "Upsert" ? change.record.id : change.id,
          }),
        ),
      { discard: true },
    )

  const onListed = (id: string, type: TypeKey, watch: TypeWatch.TypeWatch, outcome: ListOutcome) =>
    update(id, (s) => ({ ...s, phase: "synced", synced: true, objects: outcome.objects })).pipe(
      Effect.zipRight(watch.relists.listed(outcome)),
      Effect.zipRight(
        Effect.whenLogLevel(
          Effect.logDebug("listed").pipe(
            Effect.annotateLogs({ type: type.key, objects: outcome.objects, deletes: outcome.deletes }),
          ),
          LogLevel.Debug,
        ),
      ),
    )

  const onStatusEvent = (
    id: string,
    type: TypeKey,
    event: WatchEvent & { readonly _tag: "Error" | "Restarted" },
  ): Effect.Effect<void> => {
    if (event._tag === "Restarted") {
      return update(id, (s) => ({ ...s, restarts: s.restarts + 1 })).pipe(
        Effect.zipRight(Metric.increment(Metric.tagged(watchRestarts, "reason", event.reason))),
      )
    }
    const forbidden = event.error._tag === "KubeApiError" && event.error.code === 403
    return update(id, (s) => ({
      ...s,
      phase: forbidden ? "forbidden" : "failing",
      lastError: Option.some(event.error.message),
    })).pipe(
      Effect.zipRight(
        (forbidden
          ? Effect.logWarning("forbidden to list or watch this type; skipped, retried rarely")
          : Effect.logWarning("watch failed; retrying with backoff")
        ).pipe(Effect.annotateLogs({ type: type.key, error: event.error.message })),
      ),
    )
  }

  return run
}
