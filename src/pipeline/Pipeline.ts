/**
 * Everything after "a change was observed", as one Stream: changes → keyed debounce and batching
 * (`DebounceBatch`) → the sender (`Delivery`) → the sink. The final flush belongs to a finalizer:
 * when the pipeline's scope closes, the running stream is interrupted (nothing is lost: a batch in
 * flight goes back into the keyed state), what is still queued upstream is taken in, and every
 * pending entry, including those inside their debounce window, goes out within `shutdownTimeout`.
 */
import {
  Chunk,
  Context,
  Duration,
  Effect,
  Fiber,
  Layer,
  Option,
  Queue,
  Ref,
  type Scope,
  Stream,
} from "effect"
import { SyncConfig, type SyncConfigShape } from "../config/Config.js"
import type { Change } from "../record/Change.js"
import { ChangeQueue } from "../record/ChangeQueue.js"
import { fromBatch, type SyncPayload } from "../record/Payload.js"
import { InstanceSink } from "../sink/Sink.js"
import type { Batch } from "./Coalescer.js"
import * as DebounceBatch from "./DebounceBatch.js"
import * as Delivery from "./Delivery.js"
import { instanceCodec, type Keyed } from "./KeyedCodec.js"

export interface PipelineOptions extends DebounceBatch.CoalescerOptions, Delivery.RetryOptions {
  /** How long the final flush may take once the pipeline is interrupted. */
  readonly shutdownTimeout: Duration.DurationInput
}

export interface Pipeline {
  /** Distinct ids waiting to be sent. */
  readonly pending: Effect.Effect<number>
  /**
   * Makes the next upsert of every id go out even if unchanged (a resync re-sends everything);
   * returns the ids the receiver may hold, including those whose change it refused for good.
   */
  readonly forgetHandedOver: Effect.Effect<ReadonlyArray<string>>
  /** Ids a previous process handed over (its checkpoint): held by the receiver, record unknown. */
  readonly restoreHandedOver: (ids: Iterable<string>) => Effect.Effect<void>
  /** Every id the receiver may hold: handed over and not deleted since, pending or in flight. */
  readonly receiverIds: Effect.Effect<ReadonlySet<string>>
  /** Changes whenever `receiverIds` may have changed; updates of ids it holds leave it alone. */
  readonly receiverIdsVersion: Effect.Effect<number>
  /** Completes once the changes have ended and everything they carried was delivered. */
  readonly drained: Effect.Effect<void>
}

/** What feeds a pipeline: its changes, and what is still waiting upstream when it is stopped. */
export interface Source<C> {
  readonly changes: Stream.Stream<C>
  /** Taken in by the final flush, after the stream has been interrupted. */
  readonly leftovers?: Effect.Effect<Iterable<C>> | undefined
}

/** The instance payload of a batch, shaped by the exported Schema. */
export const toPayload = (batch: Batch<Change>): SyncPayload =>
  fromBatch(
    batch,
    (upsert) => upsert.record,
    (remove) => remove.id,
  )

/** A pipeline for any keyed changes: debounce, batching, retries and the final flush. */
export const makeWith = <C extends Keyed>(
  options: PipelineOptions,
  delivery: Delivery.Delivery<C>,
  source: Source<C>,
): Effect.Effect<Pipeline, never, Scope.Scope> =>
  Effect.gen(function* () {
    const keyed = yield* DebounceBatch.make(options, delivery.codec)
    const deliver = yield* Delivery.make(keyed, delivery, options)

    // Registered before the stream is forked, so it runs after the stream has been interrupted
    // (finalizers run in reverse order): by then nothing else is sending.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* keyed.requeueInFlight
        if (source.leftovers !== undefined) yield* Effect.flatMap(source.leftovers, keyed.offerAll)
        yield* keyed.close
        yield* Stream.runForEach(keyed.batches, deliver)
      }).pipe(
        Effect.interruptible,
        Effect.timeout(options.shutdownTimeout),
        Effect.catchTag("TimeoutException", () =>
          Effect.flatMap(keyed.pending, (undelivered) =>
            Effect.logError("shutdown timeout reached before everything was delivered").pipe(
              Effect.annotateLogs({ pipeline: delivery.name, undelivered }),
            ),
          ),
        ),
      ),
    )
    const running = yield* source.changes.pipe(
      DebounceBatch.debounceBatch(keyed),
      Stream.runForEach(deliver),
      Effect.forkScoped,
    )
    return {
      pending: keyed.pending,
      forgetHandedOver: keyed.forgetHandedOver,
      restoreHandedOver: keyed.restoreHandedOver,
      receiverIds: keyed.receiverIds,
      receiverIdsVersion: keyed.receiverIdsVersion,
      drained: Fiber.join(running),
    } satisfies Pipeline
  })

/** Instance changes to the `InstanceSink` as `{upserts, deletes}` payloads. */
export const make = (
  options: PipelineOptions,
  source: Source<Change>,
): Effect.Effect<Pipeline, never, InstanceSink | Scope.Scope> =>
  Effect.flatMap(InstanceSink, (sink) =>
    makeWith(
      options,
      { name: "instances", codec: instanceCodec, send: (batch) => sink.send(toPayload(batch)) },
      source,
    ),
  )

/**
 * Runs `changes` through the pipeline until the stream ends (then everything pending is sent) or
 * the fiber is interrupted (then everything pending is flushed within `shutdownTimeout`).
 */
export const run = <E, R>(
  changes: Stream.Stream<Change, E, R>,
  options: PipelineOptions,
): Effect.Effect<void, E, InstanceSink | R> =>
  Effect.scoped(
    Effect.gen(function* () {
      // The stream's failure is kept aside so that the pipeline first delivers what came before it.
      const failure = yield* Ref.make(Option.none<E>())
      const context = yield* Effect.context<R>()
      const source = changes.pipe(
        Stream.catchAll((error) => Stream.drain(Stream.fromEffect(Ref.set(failure, Option.some(error))))),
        Stream.provideContext(context),
      )
      const pipeline = yield* make(options, { changes: source })
      yield* pipeline.drained
      const failed = yield* Ref.get(failure)
      if (Option.isSome(failed)) return yield* Effect.fail(failed.value)
    }),
  )

/** Every watch's changes, as the `ChangeQueue` holds them: one network read per element. */
export const fromChangeQueue = (queue: Queue.Queue<ReadonlyArray<Change>>): Source<Change> => ({
  changes: Stream.fromQueue(queue).pipe(Stream.mapConcat((changes) => changes)),
  leftovers: Effect.map(Queue.takeAll(queue), (reads) => Chunk.toReadonlyArray(reads).flat()),
})

/** The pipeline as a service, reading the `ChangeQueue`; its finalizer is the final flush. */
export class SyncPipeline extends Context.Tag("k8s-vectordb-sync/SyncPipeline")<SyncPipeline, Pipeline>() {
  static readonly optionsFrom = (config: SyncConfigShape): PipelineOptions => ({
    debounceWindowMs: Duration.toMillis(config.debounceWindow),
    debounceMaxWaitMs: Duration.toMillis(config.debounceMaxWait),
    batchFlushIntervalMs: Duration.toMillis(config.batchFlushInterval),
    batchMaxSize: config.batchMaxSize,
    batchMaxBytes: config.batchMaxBytes,
    shutdownTimeout: config.shutdownTimeout,
    retryInitialBackoff: config.retryInitialBackoff,
    retryMaxBackoff: config.retryMaxBackoff,
  })

  static readonly layer: Layer.Layer<SyncPipeline, never, SyncConfig | InstanceSink | ChangeQueue> =
    Layer.scoped(
      SyncPipeline,
      Effect.gen(function* () {
        const config = yield* SyncConfig
        const queue = yield* ChangeQueue
        return yield* make(SyncPipeline.optionsFrom(config), fromChangeQueue(queue))
      }),
    )
}
