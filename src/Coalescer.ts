/**
 * The keyed state behind debouncing and batching: at most one pending entry per id, whatever the
 * number of events, so memory grows with the number of objects and never with the event rate.
 *
 * It is a plain state machine driven by explicit timestamps. It never reads a clock and never
 * waits; `Batcher` adds time and waiting on top. That keeps every rule here testable as a pure
 * function of its inputs.
 */
import { type Change, idOf } from "./Change.js"

export interface CoalescerOptions {
  /** An upsert is ripe once its id has been quiet this long. */
  readonly debounceWindowMs: number
  /** ...or once this long has passed since the id first became pending, however busy it is. */
  readonly debounceMaxWaitMs: number
  /** Ripe upserts wait at most this long for company before a batch goes out. */
  readonly batchFlushIntervalMs: number
  /** Upper bound on the entries of one batch. */
  readonly batchMaxSize: number
}

/** What the coalescer works on: upserts and deletes, keyed. */
export interface Keyed {
  readonly _tag: "Upsert" | "Delete"
}

/** How to key and compare changes of one kind. */
export interface KeyedCodec<C extends Keyed> {
  readonly idOf: (change: C) => string
  /** Upserts only: equal fingerprints mean the update changes nothing downstream. */
  readonly fingerprintOf: (change: C) => string
}

/** Instance changes: keyed by record id, compared by their serialised record. */
export const instanceCodec: KeyedCodec<Change> = {
  idOf,
  fingerprintOf: (change) => (change._tag === "Upsert" ? JSON.stringify(change.record) : ""),
}

/** Changes handed to the sink together; ids are distinct and deletes come first. */
export type Batch<C extends Keyed = Change> = ReadonlyArray<C>

interface Entry<C> {
  readonly change: C
  /** Serialised record of an upsert, compared to suppress changes that change nothing. */
  readonly fingerprint: string | undefined
  /** When the id became pending; bounds the debounce by `debounceMaxWaitMs`. */
  readonly firstAt: number
  /** When the entry is ripe. Deletes are ripe at once. */
  readonly dueAt: number
}

export class Coalescer<C extends Keyed = Change> {
  /** Insertion-ordered, so older ids tend to leave first. */
  private readonly entries = new Map<string, Entry<C>>()
  /**
   * The fingerprint of the last upsert of each id handed to the sink. Recorded when a batch is
   * taken rather than when it is acknowledged, so that a change arriving while its predecessor is
   * in flight is compared with what the receiver will hold; a failed send forgets it again.
   */
  private readonly handedOver = new Map<string, string>()
  private closed = false

  constructor(
    readonly options: CoalescerOptions,
    private readonly codec: KeyedCodec<C>,
  ) {}

  private fingerprintOf(change: C): string | undefined {
    return change._tag === "Upsert" ? this.codec.fingerprintOf(change) : undefined
  }

  /** Distinct ids waiting to be sent. */
  get size(): number {
    return this.entries.size
  }

  get isClosed(): boolean {
    return this.closed
  }

  offer(change: C, now: number): void {
    const id = this.codec.idOf(change)
    if (change._tag === "Delete") {
      // Not debounced: a delete replaces whatever was pending for the id and is due now.
      this.entries.set(id, { change, fingerprint: undefined, firstAt: now, dueAt: now })
      return
    }
    const fingerprint = this.codec.fingerprintOf(change)
    const current = this.entries.get(id)
    if (current?.fingerprint === fingerprint) return // same record again: not a change, the window is not reset
    if (this.handedOver.get(id) === fingerprint) {
      // Back to what the receiver has (or will have): whatever was pending is moot.
      this.entries.delete(id)
      return
    }
    const { debounceWindowMs, debounceMaxWaitMs } = this.options
    // A pending upsert keeps its first time so that max wait holds; a pending delete followed by a
    // re-creation starts afresh.
    const firstAt = current?.change._tag === "Upsert" ? current.firstAt : now
    this.entries.set(id, {
      change,
      fingerprint,
      firstAt,
      dueAt: Math.min(now + debounceWindowMs, firstAt + debounceMaxWaitMs),
    })
  }

  /**
   * The next batch if one should go out at `now`: when a delete is ripe, when a full batch is ripe,
   * or when the oldest ripe upsert has waited `batchFlushIntervalMs` for company. Once closed,
   * everything is due, ripe or not.
   */
  take(now: number): Batch<C> | undefined {
    if (!this.hasBatch(now)) return undefined
    const { batchMaxSize } = this.options
    const batch: Array<C> = []
    // Deletes first: they must never wait behind upserts, and a receiver applies them first anyway.
    for (const wanted of ["Delete", "Upsert"] as const) {
      for (const [id, entry] of this.entries) {
        if (batch.length >= batchMaxSize) break
        if (entry.change._tag !== wanted || !this.isDue(entry, now)) continue
        this.entries.delete(id)
        if (entry.fingerprint === undefined) this.handedOver.delete(id)
        else this.handedOver.set(id, entry.fingerprint)
        batch.push(entry.change)
      }
    }
    return batch
  }

  /** Whether `take(now)` returns a batch. */
  hasBatch(now: number): boolean {
    const { batchMaxSize, batchFlushIntervalMs } = this.options
    let due = 0
    let oldestDue = Number.POSITIVE_INFINITY
    for (const entry of this.entries.values()) {
      if (!this.isDue(entry, now)) continue
      if (this.closed || entry.change._tag === "Delete") return true
      if (++due >= batchMaxSize) return true
      if (entry.dueAt < oldestDue) oldestDue = entry.dueAt
    }
    return due > 0 && oldestDue + batchFlushIntervalMs <= now
  }

  private isDue(entry: Entry<C>, now: number): boolean {
    return this.closed || entry.dueAt <= now
  }

  /** When `take` may next return something (absent new offers); `Infinity` when nothing is pending. */
  nextWake(now: number): number {
    if (this.closed && this.entries.size > 0) return now
    let wake = Number.POSITIVE_INFINITY
    for (const entry of this.entries.values()) {
      const at =
        entry.dueAt > now || entry.change._tag === "Delete"
          ? entry.dueAt
          : entry.dueAt + this.options.batchFlushIntervalMs
      if (at < wake) wake = at
    }
    return wake
  }

  /**
   * Puts back the changes of a batch that was not delivered, unless a newer change of the same id
   * arrived meanwhile: then the newer one is what must be sent, and the older one must never
   * follow it. The receiver's state of these ids is unknown from now on.
   */
  requeue(batch: Batch<C>, now: number): void {
    for (const change of batch) {
      const id = this.codec.idOf(change)
      this.handedOver.delete(id)
      if (this.entries.has(id)) continue
      // Overdue, so it goes out with the next batch instead of waiting for company again.
      const dueAt = now - this.options.batchFlushIntervalMs
      this.entries.set(id, { change, fingerprint: this.fingerprintOf(change), firstAt: dueAt, dueAt })
    }
  }

  /** A change the receiver refused for good: what it holds for the id is unknown. */
  setAside(change: C): void {
    this.handedOver.delete(this.codec.idOf(change))
  }

  /**
   * Forgets what the receiver was given, so that the next upsert of every id is sent (resync), and
   * returns the ids of the upserts it had been given.
   */
  forgetHandedOver(): ReadonlyArray<string> {
    const ids = [...this.handedOver.keys()]
    this.handedOver.clear()
    return ids
  }

  /** No more offers are coming: everything pending is due now. */
  close(): void {
    this.closed = true
  }
}
