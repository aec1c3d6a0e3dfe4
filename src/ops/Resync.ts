/**
 * Full resync: every `RESYNC_INTERVAL_MIN` and on `POST /api/v1/resync`. Every watched type is
 * listed afresh; the pipeline forgets what it handed over, so every current object is sent again
 * (a receiver that lost data gets it back), and objects that vanished unseen are deleted, including
 * ids this process handed to the receiver that no watch knows any more. A resync
 * requested while one runs joins it rather than starting another; requests over the API start one
 * at most once per `RESYNC_MIN_INTERVAL_MS` (ResyncGate).
 */
import { Context, Duration, Effect, Layer, Metric, Option, Queue, type Scope } from "effect"
import { SyncConfig } from "../config/Config.js"
import { resyncs } from "../metrics/Metrics.js"
import { SyncPipeline } from "../pipeline/Pipeline.js"
import * as Change from "../record/Change.js"
import { ChangeQueue } from "../record/ChangeQueue.js"
import { Watchers } from "../watch/Watchers.js"
import * as ResyncGate from "./ResyncGate.js"

export interface ResyncOutcome {
  /** Types listed. */
  readonly types: number
  /** Upserts queued: every object the lists returned. */
  readonly upserts: number
  /** Deletes queued for objects that had vanished. */
  readonly deletes: number
  /** Types that could not be listed in time (failing or forbidden): not resynced. */
  readonly incomplete: ReadonlyArray<string>
}

export interface ResyncShape {
  /** Runs a resync, or joins the one running, and answers with what it queued. */
  readonly run: Effect.Effect<ResyncOutcome>
  /**
   * As `run`, for requests from outside (`POST /api/v1/resync`): starts one at most once per
   * `resyncMinInterval`; within it, joins the one running or fails.
   */
  readonly request: Effect.Effect<ResyncOutcome, ResyncGate.ResyncRateLimited>
}

/** How long one type's list may take before the resync reports it instead of waiting. */
const LIST_TIMEOUT = Duration.minutes(2)

export const make: Effect.Effect<
  ResyncShape,
  never,
  Watchers | SyncPipeline | ChangeQueue | SyncConfig | Scope.Scope
> = Effect.gen(function* () {
  const watchers = yield* Watchers
  const pipeline = yield* SyncPipeline
  const changes = yield* ChangeQueue
  const config = yield* SyncConfig

  const once = Effect.gen(function* () {
    yield* Effect.logInfo("resync started")
    const handedOver = yield* pipeline.forgetHandedOver
    const relisted = yield* watchers.relistAll(LIST_TIMEOUT)
    // Ids this process gave the receiver that no watch knows any more (their type is no longer
    // served or watched, a delete was lost on the way, or the receiver refused it for good): gone,
    // as far as anyone can tell.
    const known = yield* watchers.knownIds
    const stale = handedOver.filter((id) => !known.has(id))
    if (stale.length > 0) yield* Queue.offer(changes, stale.map(Change.remove))
    const outcome: ResyncOutcome = {
      types: relisted.types,
      upserts: relisted.objects,
      deletes: relisted.deletes + stale.length,
      incomplete: relisted.incomplete,
    }
    yield* Metric.increment(resyncs)
    yield* Effect.logInfo("resync queued").pipe(
      Effect.annotateLogs({ ...outcome, incomplete: outcome.incomplete.join(",") }),
    )
    return outcome
  })

  const { request, run } = yield* ResyncGate.make(once, config.resyncMinInterval)

  yield* Option.match(config.resyncInterval, {
    onNone: () => Effect.void,
    onSome: (interval) => Effect.forkScoped(Effect.forever(Effect.delay(run, interval))),
  })
  return { run, request } satisfies ResyncShape
})

export class Resync extends Context.Tag("k8s-vectordb-sync/Resync")<Resync, ResyncShape>() {
  static readonly layer: Layer.Layer<Resync, never, Watchers | SyncPipeline | ChangeQueue | SyncConfig> =
    Layer.scoped(Resync, make)
}
