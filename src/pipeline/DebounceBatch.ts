/**
 * Keyed debounce and batching as a Stream operator: changes in, batches out, by the rules of
 * `Coalescer`. Upstream is read eagerly into the keyed state, so a slow downstream makes changes
 * coalesce per id instead of holding up upstream; batches leave when the rules let them, with all
 * waiting done through Effect's `Clock` (the TestClock tests drive this very operator).
 *
 * The keyed state is a value of its own (`KeyedBatches`) rather than hidden inside the operator,
 * because the sender and the resync talk to it too: an undelivered batch goes back into it (where
 * newer state supersedes it), a resync makes it forget what it handed over, and the final flush
 * takes what is left in it.
 */
import { Clock, Duration, Effect, Fiber, Option, Queue, Stream } from "effect"
import type { Change } from "../record/Change.js"
import { type Batch, Coalescer, type CoalescerOptions } from "./Coalescer.js"
import type { Keyed, KeyedCodec } from "./KeyedCodec.js"

export type { Batch, CoalescerOptions } from "./Coalescer.js"

export interface KeyedBatches<C extends Keyed = Change> {
  /** Never blocks: each change merges into the pending entry of its id, in order. */
  readonly offerAll: (changes: Iterable<C>) => Effect.Effect<void>
  /**
   * Due batches, waiting as long as the rules say, until the state is closed and empty. A batch
   * taken stays "in flight" until it is settled or requeued, so that a delivery cut short by
   * interruption can be put back (`requeueInFlight`) and nothing is lost.
   */
  readonly batches: Stream.Stream<Batch<C>>
  /** The batch (or what is left of it) reached the receiver or was set aside: no longer in flight. */
  readonly settle: Effect.Effect<void>
  /** Puts an undelivered batch back, except for ids that have newer changes. */
  readonly requeue: (batch: Batch<C>) => Effect.Effect<void>
  /** Puts back the batch in flight, if any: its delivery never finished. */
  readonly requeueInFlight: Effect.Effect<void>
  /** The receiver refused a change for good: what it holds for that id is unknown. */
  readonly setAside: (change: C) => Effect.Effect<void>
  /**
   * Makes the next upsert of every id go out even if unchanged; returns the ids the receiver may
   * hold: upserts handed over, and ids whose change it refused for good (a refused delete).
   */
  readonly forgetHandedOver: Effect.Effect<ReadonlyArray<string>>
  /** Ids a previous process handed over (from its checkpoint), held by the receiver. */
  readonly restoreHandedOver: (ids: Iterable<string>) => Effect.Effect<void>
  /** Every id the receiver may hold: handed over, pending or in flight (read-only). */
  readonly receiverIds: Effect.Effect<ReadonlySet<string>>
  /** Changes whenever `receiverIds` may have changed; updates of ids it holds leave it alone. */
  readonly receiverIdsVersion: Effect.Effect<number>
  /** No more changes: everything pending is due now, ripe or not, and `batches` ends when empty. */
  readonly close: Effect.Effect<void>
  /** Distinct ids waiting to be sent. */
  readonly pending: Effect.Effect<number>
}

export const make = <C extends Keyed>(
  options: CoalescerOptions,
  codec: KeyedCodec<C>,
): Effect.Effect<KeyedBatches<C>> =>
  Effect.gen(function* () {
    const state = new Coalescer<C>(options, codec)
    let inFlight: Batch<C> | undefined
    /** Settled batches that carried a delete: part of `receiverIdsVersion`. */
    let settledDeletes = 0
    // Capacity one: any number of offers while the consumer is busy collapse into a single wake-up.
    const wakeUp = yield* Queue.sliding<void>(1)
    const notify = Queue.offer(wakeUp, undefined)
    /**
     * When the waiting consumer wakes by itself; `-Infinity` while it is not waiting (it reads the
     * state before it waits again). An offer wakes it only when it makes something due earlier:
     * most upserts are due a debounce window later, and waking for each would cost a timer and
     * a fiber per change.
     */
    let wakesAt = Number.NEGATIVE_INFINITY
    const notifyIfEarlier = (now: number) =>
      // Not waiting: it reads the state anyway, so the state's next wake need not be worked out.
      wakesAt !== Number.NEGATIVE_INFINITY && state.nextWake(now) < wakesAt ? notify : Effect.void

    /** The next batch, waiting as the rules say; `None` once closed and empty. */
    const take: Effect.Effect<Option.Option<Batch<C>>> = Effect.suspend(() =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (state.isClosed && state.size === 0) return Effect.succeedNone
        const batch = state.take(now)
        if (batch !== undefined) {
          inFlight = batch
          return Effect.succeedSome(batch)
        }
        const wake = state.nextWake(now)
        wakesAt = wake
        const woken = Queue.take(wakeUp)
        const wait = Number.isFinite(wake)
          ? Effect.timeoutOption(woken, Duration.millis(Math.max(1, wake - now)))
          : woken
        return Effect.zipRight(
          wait,
          Effect.suspend(() => {
            wakesAt = Number.NEGATIVE_INFINITY
            return take
          }),
        )
      }),
    )

    const requeue = (batch: Batch<C>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        inFlight = undefined
        state.requeue(batch, now)
        return notify
      })

    return {
      offerAll: (changes) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          for (const change of changes) state.offer(change, now)
          return notifyIfEarlier(now)
        }),
      // A batch leaves the state and becomes in flight in one synchronous step: interruption finds
      // it in one place or the other.
      batches: Stream.repeatEffectOption(
        Effect.flatMap(take, (batch) =>
          Option.isSome(batch) ? Effect.succeed(batch.value) : Effect.fail(Option.none()),
        ),
      ),
      settle: Effect.sync(() => {
        // A delete's id leaves the receiver's ids now.
        if (inFlight?.some((change) => change._tag === "Delete")) settledDeletes++
        inFlight = undefined
      }),
      requeue,
      requeueInFlight: Effect.suspend(() => (inFlight === undefined ? Effect.void : requeue(inFlight))),
      setAside: (change) => Effect.sync(() => state.setAside(change)),
      forgetHandedOver: Effect.sync(() => state.forgetHandedOver()),
      restoreHandedOver: (ids) => Effect.sync(() => state.restoreHandedOver(ids)),
      receiverIds: Effect.sync(() => {
        const ids = state.receiverIds()
        for (const change of inFlight ?? []) ids.add(codec.idOf(change))
        return ids
      }),
      receiverIdsVersion: Effect.sync(() => state.receiverIdsVersion + settledDeletes),
      close: Effect.zipRight(
        Effect.sync(() => state.close()),
        notify,
      ),
      pending: Effect.sync(() => state.size),
    } satisfies KeyedBatches<C>
  })

/**
 * The operator: reads `changes` into `keyed` and emits its due batches. When `changes` ends,
 * whatever is pending goes out at once and the stream ends; a failure of `changes` fails the
 * stream after that, so what was pending is delivered before the error.
 */
export const debounceBatch =
  <C extends Keyed>(keyed: KeyedBatches<C>) =>
  <E, R>(changes: Stream.Stream<C, E, R>): Stream.Stream<Batch<C>, E, R> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const upstream = yield* changes.pipe(
          Stream.runForEachChunk(keyed.offerAll),
          Effect.ensuring(keyed.close),
          Effect.forkScoped,
        )
        return Stream.concat(keyed.batches, Stream.drain(Stream.fromEffect(Fiber.join(upstream))))
      }),
    )
