/**
 * Everything after "a change was observed": keyed debounce and batching (`Batcher`), delivery to
 * the `InstanceSink` with retries that never lose data, and the final flush on interruption.
 *
 * Delivery is sequential: one request at a time, so a newer state of an id can only ever be sent
 * after an older one has been acknowledged or given up on. A batch that fails transiently goes back
 * into the keyed state, where newer changes of the same ids supersede it; the next attempt, after a
 * `Schedule`d backoff, carries whatever is newest.
 */
import {
  Clock,
  Context,
  Data,
  Duration,
  Effect,
  Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Schedule,
  type Scope,
  Stream,
} from "effect"
import { SyncConfig, type SyncConfigShape } from "../config/Config.js"
import * as Metrics from "../metrics/Metrics.js"
import type { Change } from "../record/Change.js"
import { ChangeQueue } from "../record/ChangeQueue.js"
import type { SyncPayload } from "../record/Payload.js"
import * as Backoff from "../schedule/Backoff.js"
import { InstanceSink, type SinkError, type SinkRejected, type SinkUnavailable } from "../sink/Sink.js"
import * as Batcher from "./Batcher.js"
import { type Batch, instanceCodec, type Keyed, type KeyedCodec } from "./Coalescer.js"

export interface PipelineOptions extends Batcher.BatcherOptions {
  /** How long the final flush may take once the pipeline is interrupted. */
  readonly shutdownTimeout: Duration.DurationInput
  /** First backoff after a transient failure; doubles up to `retryMaxBackoff`. */
  readonly retryInitialBackoff: Duration.DurationInput
  readonly retryMaxBackoff: Duration.DurationInput
}

export interface Pipeline<C extends Keyed = Change> {
  /** Never blocks: the change merges into the pending entry of its id. */
  readonly offer: (change: C) => Effect.Effect<void>
  /** `offer` for a batch of changes (a watch's network read), in order. */
  readonly offerAll: (changes: Iterable<C>) => Effect.Effect<void>
  /** Distinct ids waiting to be sent. */
  readonly pending: Effect.Effect<number>
  /** Makes the next upsert of every id go out even if unchanged (a resync re-sends everything). */
  readonly forgetHandedOver: Effect.Effect<ReadonlyArray<string>>
  /** Stops taking changes, sends everything pending at once and waits until it is delivered. */
  readonly drain: Effect.Effect<void>
}

export const toPayload = (batch: Batch): SyncPayload => {
  const upserts = []
  const deletes = []
  for (const change of batch) {
    if (change._tag === "Upsert") upserts.push(change.record)
    else deletes.push(change.id)
  }
  return { upserts, deletes }
}

/** A batch, or what is left of it, that did not reach the receiver this time. */
class Undelivered<C extends Keyed> extends Data.TaggedError("Undelivered")<{
  readonly batch: Batch<C>
  readonly error: SinkUnavailable
}> {}

/**
 * Capped exponential backoff with jitter that waits at least as long as the receiver's
 * `Retry-After` asks.
 */
export const retrySchedule = (options: {
  readonly initial: Duration.DurationInput
  readonly max: Duration.DurationInput
}): Schedule.Schedule<SinkUnavailable, SinkUnavailable> => {
  const backoff: Schedule.Schedule<unknown, SinkUnavailable> = Backoff.exponential(options)
  return Schedule.passthrough(backoff).pipe(
    Schedule.modifyDelay((error, delay) =>
      error.retryAfter !== undefined && Duration.greaterThan(error.retryAfter, delay)
        ? error.retryAfter
        : delay,
    ),
  )
}

const halves = <C extends Keyed>(batch: Batch<C>): readonly [Batch<C>, Batch<C>] => {
  const middle = Math.ceil(batch.length / 2)
  return [batch.slice(0, middle), batch.slice(middle)]
}

/** What a pipeline delivers and how: the keys of its changes and one attempt at sending a batch. */
export interface Delivery<C extends Keyed> {
  /** Tags the metrics and logs (`instances`, `capabilities`). */
  readonly name: string
  readonly codec: KeyedCodec<C>
  readonly send: (batch: Batch<C>) => Effect.Effect<void, SinkError>
}

/** The instance pipeline: `Change`s to the `InstanceSink` as `{upserts, deletes}` payloads. */
export const make = (options: PipelineOptions): Effect.Effect<Pipeline, never, InstanceSink | Scope.Scope> =>
  Effect.flatMap(InstanceSink, (sink) =>
    makeWith(options, {
      name: "instances",
      codec: instanceCodec,
      send: (batch) => sink.send(toPayload(batch)),
    }),
  )

/** A pipeline for any keyed changes: debounce, batching, retries and the final flush. */
export const makeWith = <C extends Keyed>(
  options: PipelineOptions,
  delivery: Delivery<C>,
): Effect.Effect<Pipeline<C>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const batcher = yield* Batcher.make(options, delivery.codec)
    const retry = retrySchedule({ initial: options.retryInitialBackoff, max: options.retryMaxBackoff })
    const tagged = <T, I, O>(metric: Metric.Metric<T, I, O>) =>
      Metric.tagged(metric, "pipeline", delivery.name)

    const setAside = (change: C, error: SinkRejected) =>
      Effect.logError("receiver refused a change for good; set aside").pipe(
        Effect.annotateLogs({
          pipeline: delivery.name,
          id: delivery.codec.idOf(change),
          op: change._tag,
          status: error.status,
          body: error.body,
        }),
        Effect.zipRight(batcher.setAside(change)),
        Effect.zipRight(Metric.increment(tagged(Metrics.rejectedEntries))),
      )

    const sendOnce = (batch: Batch<C>) =>
      Effect.gen(function* () {
        const upserts = batch.filter((change) => change._tag === "Upsert").length
        const deletes = batch.length - upserts
        const start = yield* Clock.currentTimeMillis
        const outcome = yield* Effect.either(delivery.send(batch))
        const end = yield* Clock.currentTimeMillis
        yield* Metric.update(tagged(Metrics.sendDuration), (end - start) / 1000)
        const tag =
          outcome._tag === "Right"
            ? "success"
            : outcome.left._tag === "SinkRejected"
              ? "rejected"
              : "unavailable"
        yield* Metric.increment(Metric.tagged(tagged(Metrics.requests), "outcome", tag))
        yield* Effect.logInfo("sent batch").pipe(
          Effect.annotateLogs({
            pipeline: delivery.name,
            upserts,
            deletes,
            outcome: tag,
            ms: end - start,
          }),
        )
        if (outcome._tag === "Right") {
          yield* Metric.incrementBy(tagged(Metrics.upsertsSent), upserts)
          yield* Metric.incrementBy(tagged(Metrics.deletesSent), deletes)
          yield* Metric.set(tagged(Metrics.lastSuccess), end / 1000)
        }
        return yield* outcome
      })

    // A permanent rejection of several entries says nothing about which one is bad: halve until
    // single entries are refused, so that every valid entry still arrives.
    const deliver = (batch: Batch<C>): Effect.Effect<void, Undelivered<C>> =>
      sendOnce(batch).pipe(
        Effect.catchTags({
          SinkUnavailable: (error) => Effect.fail(new Undelivered<C>({ batch, error })),
          SinkRejected: (error) => {
            if (batch.length === 1) return setAside(batch[0]!, error)
            const [first, second] = halves(batch)
            return deliver(first).pipe(
              Effect.mapError(
                (undelivered) =>
                  new Undelivered({ ...undelivered, batch: [...undelivered.batch, ...second] }),
              ),
              Effect.zipRight(deliver(second)),
            )
          },
        }),
      )

    /**
     * Sends batches until the batcher is closed and empty. Taking a batch and handing it to the
     * sink is one uninterruptible step, and an interrupted delivery puts its batch back, so
     * interruption never loses a change: the final flush picks it up.
     */
    const sendAll = Effect.gen(function* () {
      const driver = yield* Schedule.driver(retry)
      const step = Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(batcher.awaitBatch), (more) =>
          !more
            ? Effect.succeed(false)
            : Effect.flatMap(batcher.takeNow, (taken) => {
                if (Option.isNone(taken)) return Effect.succeed(true)
                const batch = taken.value
                return restore(deliver(batch)).pipe(
                  Effect.onInterrupt(() => batcher.requeue(batch)),
                  Effect.matchEffect({
                    onSuccess: () => Effect.as(driver.reset, true),
                    onFailure: (undelivered) =>
                      batcher.requeue(undelivered.batch).pipe(
                        Effect.zipRight(Metric.increment(tagged(Metrics.retries))),
                        Effect.zipRight(
                          Effect.logWarning("receiver unavailable; will retry").pipe(
                            Effect.annotateLogs({
                              entries: undelivered.batch.length,
                              error: undelivered.error.message,
                            }),
                          ),
                        ),
                        Effect.zipRight(restore(Effect.ignore(driver.next(undelivered.error)))),
                        Effect.as(true),
                      ),
                  }),
                )
              }),
        ),
      ).pipe(
        Effect.tap(() =>
          Effect.flatMap(batcher.pending, (n) => Metric.set(tagged(Metrics.pendingEntries), n)),
        ),
      )
      yield* Effect.repeat(step, { while: (more) => more })
    })

    // Registered before the sender is forked, so it runs after the sender has been interrupted
    // (finalizers run in reverse order): by then nothing else is sending.
    yield* Effect.addFinalizer(() =>
      Effect.interruptible(Effect.zipRight(batcher.close, sendAll)).pipe(
        Effect.timeout(options.shutdownTimeout),
        Effect.catchTag("TimeoutException", () =>
          Effect.flatMap(batcher.pending, (pending) =>
            Effect.logError("shutdown timeout reached before everything was delivered").pipe(
              Effect.annotateLogs({ undelivered: pending }),
            ),
          ),
        ),
      ),
    )
    const sender = yield* Effect.forkScoped(sendAll)

    return {
      offer: batcher.offer,
      offerAll: batcher.offerAll,
      pending: batcher.pending,
      forgetHandedOver: batcher.forgetHandedOver,
      drain: Effect.zipRight(batcher.close, Fiber.join(sender)),
    } satisfies Pipeline<C>
  })

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
      const pipeline = yield* make(options)
      yield* Stream.runForEach(changes, pipeline.offer)
      yield* pipeline.drain
    }),
  )

/** The pipeline as a service, configured from `SyncConfig`; its finalizer is the final flush. */
export class SyncPipeline extends Context.Tag("k8s-vectordb-sync/SyncPipeline")<SyncPipeline, Pipeline>() {
  static readonly optionsFrom = (config: SyncConfigShape): PipelineOptions => ({
    debounceWindowMs: Duration.toMillis(config.debounceWindow),
    debounceMaxWaitMs: Duration.toMillis(config.debounceMaxWait),
    batchFlushIntervalMs: Duration.toMillis(config.batchFlushInterval),
    batchMaxSize: config.batchMaxSize,
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
        const pipeline = yield* make(SyncPipeline.optionsFrom(config))
        // Interim: the queue drained into the keyed state until the combinator reads it directly.
        yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(queue), pipeline.offerAll)))
        yield* Effect.addFinalizer(() =>
          Effect.flatMap(Queue.takeAll(queue), (chunks) => Effect.forEach(chunks, pipeline.offerAll)),
        )
        return pipeline
      }),
    )
}
