/**
 * The sender: hands batches to a sink one request at a time, so a newer state of an id can only
 * ever be sent after an older one has been acknowledged or given up on.
 *
 * - A transient failure (`SinkUnavailable`) puts what was not delivered back into the keyed state,
 *   where newer changes of the same ids supersede it, and waits as the retry `Schedule` says
 *   (capped exponential backoff, at least the receiver's `Retry-After`); the next batch then carries
 *   the newest state.
 * - A permanent rejection of several entries says nothing about which one is bad: the batch is
 *   halved until single entries are refused, and only those are set aside. A 413 (too large) is
 *   split the same way, so it never sets aside more than one entry: only an entry refused alone.
 * - Fencing: leadership is read immediately before every request (and the receivers' HTTP client
 *   reads it again as it writes, see `http/WriteFence`); a deposed leader sends nothing and keeps
 *   its batch, exactly as if the receiver were down.
 */
import { Clock, Data, Duration, Effect, Metric, Schedule } from "effect"
import { isLeader } from "../leader/Leadership.js"
import * as Metrics from "../metrics/Metrics.js"
import * as Backoff from "../schedule/Backoff.js"
import { notLeader, type SinkError, type SinkRejected, type SinkUnavailable } from "../sink/Sink.js"
import type { Batch, KeyedBatches } from "./DebounceBatch.js"
import type { Keyed, KeyedCodec } from "./KeyedCodec.js"

/** What a pipeline delivers and how: the keys of its changes and one attempt at sending a batch. */
export interface Delivery<C extends Keyed> {
  /** Tags the metrics and logs (`instances`, `capabilities`). */
  readonly name: string
  readonly codec: KeyedCodec<C>
  readonly send: (batch: Batch<C>) => Effect.Effect<void, SinkError>
}

export interface RetryOptions {
  /** First backoff after a transient failure; doubles up to `retryMaxBackoff`. */
  readonly retryInitialBackoff: Duration.DurationInput
  readonly retryMaxBackoff: Duration.DurationInput
}

/** The shared backoff, waiting at least as long as the receiver's `Retry-After` asks. */
export const retrySchedule = (options: RetryOptions): Schedule.Schedule<SinkUnavailable, SinkUnavailable> => {
  const backoff: Schedule.Schedule<unknown, SinkUnavailable> = Backoff.exponential({
    initial: options.retryInitialBackoff,
    max: options.retryMaxBackoff,
  })
  return Schedule.passthrough(backoff).pipe(
    Schedule.modifyDelay((error, delay) =>
      error.retryAfter !== undefined && Duration.greaterThan(error.retryAfter, delay)
        ? error.retryAfter
        : delay,
    ),
  )
}

/** A batch, or what is left of it, that did not reach the receiver this time. */
class Undelivered<C extends Keyed> extends Data.TaggedError("Undelivered")<{
  readonly batch: Batch<C>
  readonly error: SinkUnavailable
}> {}

const halves = <C extends Keyed>(batch: Batch<C>): readonly [Batch<C>, Batch<C>] => {
  const middle = Math.ceil(batch.length / 2)
  return [batch.slice(0, middle), batch.slice(middle)]
}

/**
 * A function that delivers one batch taken from `keyed` and never fails: when it returns, the
 * batch was acknowledged, set aside, or is back in `keyed` after the retry wait.
 */
export const make = <C extends Keyed>(
  keyed: KeyedBatches<C>,
  delivery: Delivery<C>,
  options: RetryOptions,
): Effect.Effect<(batch: Batch<C>) => Effect.Effect<void>> =>
  Effect.gen(function* () {
    const driver = yield* Schedule.driver(retrySchedule(options))
    const tagged = <T, I, O>(metric: Metric.Metric<T, I, O>) =>
      Metric.tagged(metric, "pipeline", delivery.name)

    const setAside = (change: C, error: SinkRejected) =>
      Effect.logError(
        error.tooLarge
          ? "receiver refused a change as too large even alone; set aside"
          : "receiver refused a change for good; set aside",
      ).pipe(
        Effect.annotateLogs({
          pipeline: delivery.name,
          id: delivery.codec.idOf(change),
          op: change._tag,
          status: error.status,
          body: error.body,
        }),
        Effect.zipRight(keyed.setAside(change)),
        Effect.zipRight(Metric.increment(tagged(Metrics.rejectedEntries))),
      )

    const sendOnce = (batch: Batch<C>) =>
      Effect.gen(function* () {
        if (!(yield* isLeader)) return yield* notLeader
        let upserts = 0
        for (const change of batch) if (change._tag === "Upsert") upserts++
        const deletes = batch.length - upserts
        const start = yield* Clock.currentTimeMillis
        const outcome = yield* Effect.either(delivery.send(batch))
        const end = yield* Clock.currentTimeMillis
        const tag =
          outcome._tag === "Right"
            ? "success"
            : outcome.left._tag === "SinkRejected"
              ? "rejected"
              : "unavailable"
        yield* Metric.update(tagged(Metrics.sendDuration), (end - start) / 1000)
        yield* Metric.increment(Metric.tagged(tagged(Metrics.requests), "outcome", tag))
        yield* Effect.logInfo("sent batch").pipe(
          Effect.annotateLogs({ pipeline: delivery.name, upserts, deletes, outcome: tag, ms: end - start }),
        )
        if (outcome._tag === "Right") {
          yield* Metric.incrementBy(tagged(Metrics.upsertsSent), upserts)
          yield* Metric.incrementBy(tagged(Metrics.deletesSent), deletes)
          yield* Metric.set(tagged(Metrics.lastSuccess), end / 1000)
        }
        return yield* outcome
      })

    const attempt = (batch: Batch<C>): Effect.Effect<void, Undelivered<C>> =>
      sendOnce(batch).pipe(
        Effect.catchTags({
          SinkUnavailable: (error) => Effect.fail(new Undelivered<C>({ batch, error })),
          SinkRejected: (error) => {
            if (batch.length === 1) return setAside(batch[0]!, error)
            const [first, second] = halves(batch)
            return attempt(first).pipe(
              Effect.mapError(
                (undelivered) =>
                  new Undelivered({ ...undelivered, batch: [...undelivered.batch, ...second] }),
              ),
              Effect.zipRight(attempt(second)),
            )
          },
        }),
      )

    const updatePending = Effect.flatMap(keyed.pending, (n) => Metric.set(tagged(Metrics.pendingEntries), n))

    return (batch) =>
      attempt(batch).pipe(
        Effect.matchEffect({
          onSuccess: () => Effect.zipRight(keyed.settle, driver.reset),
          onFailure: (undelivered) =>
            keyed.requeue(undelivered.batch).pipe(
              Effect.zipRight(Metric.increment(tagged(Metrics.retries))),
              Effect.zipRight(
                Effect.logWarning(
                  undelivered.error === notLeader
                    ? "not the leader; holding changes"
                    : "receiver unavailable; will retry",
                ).pipe(
                  Effect.annotateLogs({
                    pipeline: delivery.name,
                    entries: undelivered.batch.length,
                    error: undelivered.error.message,
                  }),
                ),
              ),
              Effect.zipRight(Effect.ignore(driver.next(undelivered.error))),
            ),
        }),
        Effect.zipRight(updatePending),
      )
  })
