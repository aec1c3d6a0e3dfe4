/**
 * Time and waiting on top of `Coalescer`: changes are offered without ever blocking, and a consumer
 * waits for the next batch that the debounce and batch rules let out. Reading watches never waits
 * for the receiver: a slow consumer only lets changes coalesce.
 *
 * All waiting goes through Effect's `Clock`, so the rules are tested under `TestClock`.
 */
import { Clock, Duration, Effect, Fiber, Option, Queue, Stream } from "effect"
import type { Change } from "../record/Change.js"
import {
  type Batch,
  Coalescer,
  type CoalescerOptions,
  instanceCodec,
  type Keyed,
  type KeyedCodec,
} from "./Coalescer.js"

export type { Batch, CoalescerOptions as BatcherOptions, Keyed, KeyedCodec } from "./Coalescer.js"

export interface Batcher<C extends Keyed = Change> {
  /** Never blocks and never fails: the change is merged into the pending entry of its id. */
  readonly offer: (change: C) => Effect.Effect<void>
  /** `offer` for many changes at once, in order: one clock reading and one wake-up for all. */
  readonly offerAll: (changes: Iterable<C>) => Effect.Effect<void>
  /**
   * Waits until a batch may go out, or until the batcher is closed and empty (then `false`).
   * Interruptible; it takes nothing, so interrupting it loses nothing.
   */
  readonly awaitBatch: Effect.Effect<boolean>
  /** Takes the batch that is due now, if any. Synchronous: pair it with `awaitBatch`. */
  readonly takeNow: Effect.Effect<Option.Option<Batch<C>>>
  /** Puts back an undelivered batch, except for ids that have newer changes. */
  readonly requeue: (batch: Batch<C>) => Effect.Effect<void>
  /** Records that the receiver refused a change for good. */
  readonly setAside: (change: C) => Effect.Effect<void>
  /** Makes the next upsert of every id go out even if it equals what was sent before. */
  readonly forgetHandedOver: Effect.Effect<ReadonlyArray<string>>
  /** No more changes: everything pending is due now, ripe or not. */
  readonly close: Effect.Effect<void>
  /** Distinct ids waiting to be sent. */
  readonly pending: Effect.Effect<number>
}

export const make = <C extends Keyed>(
  options: CoalescerOptions,
  codec: KeyedCodec<C>,
): Effect.Effect<Batcher<C>> =>
  Effect.gen(function* () {
    const state = new Coalescer<C>(options, codec)
    // Capacity one: any number of offers while the consumer is busy collapse into a single wake-up.
    const wakeUp = yield* Queue.sliding<void>(1)
    const notify = Queue.offer(wakeUp, undefined)

    const awaitBatch: Effect.Effect<boolean> = Effect.suspend(() =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (state.isClosed && state.size === 0) return Effect.succeed(false)
        if (state.hasBatch(now)) return Effect.succeed(true)
        const wake = state.nextWake(now)
        const woken = Queue.take(wakeUp)
        const wait = Number.isFinite(wake)
          ? Effect.timeoutOption(woken, Duration.millis(Math.max(1, wake - now)))
          : woken
        return Effect.zipRight(wait, awaitBatch)
      }),
    )

    return {
      offer: (change) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          state.offer(change, now)
          return notify
        }),
      offerAll: (changes) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          for (const change of changes) state.offer(change, now)
          return notify
        }),
      awaitBatch,
      takeNow: Effect.map(Clock.currentTimeMillis, (now) => Option.fromNullable(state.take(now))),
      requeue: (batch) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          state.requeue(batch, now)
          return notify
        }),
      setAside: (change) => Effect.sync(() => state.setAside(change)),
      forgetHandedOver: Effect.sync(() => state.forgetHandedOver()),
      close: Effect.zipRight(
        Effect.sync(() => state.close()),
        notify,
      ),
      pending: Effect.sync(() => state.size),
    } satisfies Batcher<C>
  })

/** The next batch, waiting as long as the rules say; `None` once closed and empty. */
export const take = <C extends Keyed>(batcher: Batcher<C>): Effect.Effect<Option.Option<Batch<C>>> =>
  Effect.flatMap(batcher.awaitBatch, (more) =>
    more
      ? Effect.flatMap(batcher.takeNow, (batch) =>
          // A batch seen by `awaitBatch` can vanish before `takeNow` when a change cancels it.
          Option.isSome(batch) ? Effect.succeed(batch) : take(batcher),
        )
      : Effect.succeedNone,
  )

/**
 * Keyed debounce and batching as a Stream combinator: changes in, batches out, following the
 * rules of `Coalescer`. Upstream is read eagerly into the keyed state, so a slow downstream makes
 * changes coalesce instead of holding up upstream. When upstream ends, whatever is pending goes
 * out at once and the stream ends; an upstream failure fails the stream after that.
 */
export const debounceBatch =
  (options: CoalescerOptions) =>
  <E, R>(changes: Stream.Stream<Change, E, R>): Stream.Stream<Batch, E, R> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const batcher = yield* make(options, instanceCodec)
        const upstream = yield* changes.pipe(
          Stream.runForEach(batcher.offer),
          Effect.ensuring(batcher.close),
          Effect.forkScoped,
        )
        const batches = Stream.repeatEffectOption(
          Effect.flatMap(take(batcher), (batch) =>
            Option.isSome(batch) ? Effect.succeed(batch.value) : Effect.fail(Option.none()),
          ),
        )
        // Closing on upstream's end (or failure) lets the batches run out; then upstream's outcome,
        // failure included, ends the stream: what was pending is delivered before the error.
        return Stream.concat(batches, Stream.drain(Stream.fromEffect(Fiber.join(upstream))))
      }),
    )
