/**
 * The checkpoint as a service: the ids the receiver may hold, kept in ConfigMaps of the
 * controller's namespace, so that a process started after a crash deletes downstream what was
 * deleted while no controller ran (a push-only receiver cannot find out by itself).
 *
 * Built before the pipeline and released after it (see `Controller.withCheckpoint`): its finalizer
 * writes the checkpoint once more after the final flush. `attach` hands it the running pipeline and
 * watches; from then on, in the background and never holding up the controller:
 * 1. the checkpoint is read (retried while the API server is unavailable; a damaged or unreadable
 *    one is logged and the controller carries on without it) and its ids are restored into the
 *    pipeline as handed over, so that every later write keeps naming them until they are deleted;
 * 2. it is written again whenever the set changed, at most every `writeInterval`, by the leader only;
 * 3. once the initial lists have completed, every checkpointed id that no longer exists is queued
 *    as a delete (`Gone.ts`).
 */
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  Metric,
  Option,
  Queue,
  Ref,
  Schedule,
} from "effect"
import { SyncConfig } from "../config/Config.js"
import { KubeClient } from "../kube/KubeClient.js"
import { isRetriable } from "../kube/KubeError.js"
import { isLeader } from "../leader/Leadership.js"
import { inClusterNamespace } from "../leader/Options.js"
import { checkpointBytes, checkpointIds, checkpointWrites } from "../metrics/Metrics.js"
import { type Pipeline, SyncPipeline } from "../pipeline/Pipeline.js"
import * as Change from "../record/Change.js"
import { ChangeQueue } from "../record/ChangeQueue.js"
import * as Backoff from "../schedule/Backoff.js"
import * as CostSpaced from "../schedule/CostSpaced.js"
import { Watchers, type WatchersShape } from "../watch/Watchers.js"
import * as Codec from "./Codec.js"
import { goneIds } from "./Gone.js"
import * as Objects from "./Objects.js"

export interface CheckpointOptions {
  readonly namespace: string
  /** Name of the first ConfigMap; further parts add `-1`, `-2`, …. */
  readonly name: string
  /** Most compressed bytes in one ConfigMap. */
  readonly partBytes: number
  /** Shortest time between two writes. Default 5 s. */
  readonly writeInterval?: Duration.DurationInput
  /** Timeout of each request about the ConfigMaps. Default 10 s. */
  readonly requestTimeout?: Duration.DurationInput
  /** How often readiness is checked before the start-up deletes. Default 1 s. */
  readonly readyPoll?: Duration.DurationInput
}

/** The pause after a write is at least this many times what the write took. */
const WRITE_COST_FACTOR = 10

/** What the checkpoint needs of the running controller. */
export interface Attached {
  readonly pipeline: Pipeline
  readonly watchers: WatchersShape
  readonly changes: Queue.Enqueue<ReadonlyArray<Change.Change>>
}

export interface CheckpointShape {
  /** Starts restoring, writing and the start-up deletes against the running controller. */
  readonly attach: (attached: Attached) => Effect.Effect<void>
}

export const make = (options: CheckpointOptions) =>
  Effect.gen(function* () {
    const kube = yield* KubeClient
    const requestTimeout = options.requestTimeout ?? Duration.seconds(10)
    const store = Objects.make(kube, { namespace: options.namespace, name: options.name, requestTimeout })
    const object = `${options.namespace}/${options.name}`
    const attached = yield* Deferred.make<Attached>()
    /** Set once the old checkpoint was read: writing before would overwrite what it knew. */
    const writable = yield* Ref.make(Option.none<Pipeline>())
    /**
     * The pipeline's `receiverIdsVersion` at the last write: an unchanged version means an
     * unchanged set, which costs no collecting of a hundred thousand ids every few seconds, and
     * no copy of them kept to compare with. Version 0 is the empty set, which needs no write.
     */
    const lastWritten = yield* Ref.make(0)
    const lock = yield* Effect.makeSemaphore(1)

    const writeIfChanged = (pipeline: Pipeline) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          // Only the leader writes: a deposed one must not replace the new leader's checkpoint.
          if (!(yield* isLeader)) return
          // Read before the ids: a change in between makes the next round write again.
          const version = yield* pipeline.receiverIdsVersion
          if (version === (yield* Ref.get(lastWritten))) return
          const ids = yield* pipeline.receiverIds
          const parts = Codec.encode(ids, options.partBytes)
          yield* store.write(parts).pipe(
            Effect.zipRight(
              Effect.all([
                Ref.set(lastWritten, version),
                Metric.set(checkpointBytes, Codec.sizeOf(parts)),
                Metric.set(checkpointIds, ids.size),
                Metric.increment(Metric.tagged(checkpointWrites, "outcome", "success")),
                Effect.logDebug("checkpoint written").pipe(
                  Effect.annotateLogs({ ids: ids.size, parts: parts.length, bytes: Codec.sizeOf(parts) }),
                ),
              ]),
            ),
            Effect.catchAll((error) =>
              Effect.zipRight(
                Metric.increment(Metric.tagged(checkpointWrites, "outcome", "failed")),
                Effect.logWarning("checkpoint write failed; retried at the next interval").pipe(
                  Effect.annotateLogs({ checkpoint: object, error: error.message }),
                ),
              ),
            ),
          )
        }),
      )

    /** The ids of the checkpoint; empty when there is none or it cannot be used. */
    const restore = store.read.pipe(
      Effect.retry({
        schedule: Backoff.exponential({ initial: Duration.seconds(1), max: Duration.seconds(30) }),
        while: (error) => error._tag === "CheckpointRequestError" && isRetriable(error.cause),
      }),
      Effect.flatMap(
        Option.match({
          onNone: () =>
            Effect.as(
              Effect.logInfo("no checkpoint yet").pipe(Effect.annotateLogs({ checkpoint: object })),
              [],
            ),
          onSome: (parts) => Codec.decode(parts),
        }),
      ),
      Effect.catchAll((error) =>
        Effect.as(
          Effect.logError(
            "checkpoint unusable: carrying on without it (objects deleted while no controller ran may stay downstream)",
          ).pipe(Effect.annotateLogs({ checkpoint: object, error: error.message })),
          [],
        ),
      ),
    )

    const run = Effect.gen(function* () {
      const { changes, pipeline, watchers } = yield* Deferred.await(attached)
      const checkpointed = yield* restore
      yield* pipeline.restoreHandedOver(checkpointed)
      yield* Ref.set(writable, Option.some(pipeline))
      // A write collects, sorts and compresses every id (a few hundred milliseconds at a hundred
      // thousand, the event loop blocked): while an initial sync keeps changing the set, writing
      // every few seconds would spend much of a core on it.
      yield* CostSpaced.repeat(writeIfChanged(pipeline), {
        interval: options.writeInterval ?? Duration.seconds(5),
        factor: WRITE_COST_FACTOR,
      }).pipe(Effect.forkScoped)
      // Only complete lists tell what is gone; `Gone` keeps ids of types that have not listed.
      yield* watchers.ready.pipe(
        Effect.repeat({
          schedule: Schedule.spaced(options.readyPoll ?? Duration.seconds(1)),
          until: (ready) => ready,
        }),
      )
      const { gone, undecided } = goneIds(checkpointed, yield* watchers.knownIds, yield* watchers.status)
      if (gone.length > 0) yield* Queue.offer(changes, gone.map(Change.remove))
      yield* Effect.logInfo("checkpoint restored: ids gone while no controller ran are deleted").pipe(
        Effect.annotateLogs({
          checkpoint: object,
          checkpointed: checkpointed.length,
          gone: gone.length,
          undecided: undecided.length,
        }),
      )
    })

    // Added before the fibers are forked, so it runs after they stop, and (the layer being released
    // after the pipeline) after the final flush: the last write names what the receiver ends with.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(
        Ref.get(writable),
        Option.match({
          onNone: () => Effect.void,
          onSome: (pipeline) => Effect.timeout(writeIfChanged(pipeline), requestTimeout).pipe(Effect.ignore),
        }),
      ),
    )
    // A defect must not go unnoticed: the controller carries on, but without a checkpoint.
    yield* Effect.forkScoped(
      run.pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.logError(
                "checkpoint stopped: objects deleted while no controller runs may stay downstream",
                cause,
              ),
        ),
      ),
    )
    return {
      attach: (running) => Effect.asVoid(Deferred.succeed(attached, running)),
    } satisfies CheckpointShape
  })

export class Checkpoint extends Context.Tag("k8s-vectordb-sync/Checkpoint")<Checkpoint, CheckpointShape>() {
  static readonly layer = (options: CheckpointOptions): Layer.Layer<Checkpoint, never, KubeClient> =>
    Layer.scoped(Checkpoint, make(options))

  /** `CHECKPOINT_NAME` and `CHECKPOINT_PART_BYTES`, in the namespace the pod runs in. */
  static readonly layerFromConfig: Layer.Layer<Checkpoint, never, KubeClient | SyncConfig> =
    Layer.unwrapEffect(
      Effect.map(SyncConfig, (config) =>
        Checkpoint.layer({
          namespace: inClusterNamespace(),
          name: config.checkpoint.name,
          partBytes: config.checkpoint.partBytes,
        }),
      ),
    )

  /** Hands the running controller to the checkpoint (built after the pipeline and the watches). */
  static readonly attach: Layer.Layer<never, never, Checkpoint | SyncPipeline | Watchers | ChangeQueue> =
    Layer.effectDiscard(
      Effect.gen(function* () {
        const checkpoint = yield* Checkpoint
        yield* checkpoint.attach({
          pipeline: yield* SyncPipeline,
          watchers: yield* Watchers,
          changes: yield* ChangeQueue,
        })
      }),
    )
}
