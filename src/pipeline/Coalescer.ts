/**
 * The keyed state behind debouncing and batching: at most one pending entry per id, whatever the
 * number of events, so memory grows with the number of objects and never with the event rate.
 *
 * It is a plain state machine driven by explicit timestamps. It never reads a clock and never
 * waits; `DebounceBatch` adds time and waiting on top. That keeps every rule here testable as a pure
 * function of its inputs.
 */
import type { Change } from "../record/Change.js"
import { payloadBytes } from "../record/Payload.js"
import { DueHeap } from "./DueHeap.js"
import { HandedOver } from "./HandedOver.js"
import type { Fingerprint, Keyed, KeyedCodec } from "./KeyedCodec.js"

export interface CoalescerOptions {
  /** An upsert is ripe once its id has been quiet this long. */
  readonly debounceWindowMs: number
  /** ...or once this long has passed since the id first became pending, however busy it is. */
  readonly debounceMaxWaitMs: number
  /** Ripe upserts wait at most this long for company before a batch goes out. */
  readonly batchFlushIntervalMs: number
  /** Upper bound on the entries of one batch. */
  readonly batchMaxSize: number
  /**
   * Upper bound on the bytes of the request that carries one batch (see `KeyedCodec.sizeOf`); an
   * entry larger than that on its own is sent alone. Absent: no bound.
   */
  readonly batchMaxBytes?: number | undefined
}

/** Changes handed to the sink together; ids are distinct and deletes come first. */
export type Batch<C extends Keyed = Change> = ReadonlyArray<C>

interface Entry<C> {
  readonly change: C
  /** Digest of an upsert's record, compared to suppress changes that change nothing. */
  readonly fingerprint: Fingerprint | undefined
  /** When the id became pending; bounds the debounce by `debounceMaxWaitMs`. */
  readonly firstAt: number
  /** When the entry is ripe. Deletes are ripe at once. */
  readonly dueAt: number
  /** Bytes of its entry in a payload. */
  readonly size: number
}

/**
 * Pending entries live in exactly one of three places: `deletes` (always due), `waiting` (upserts
 * inside their debounce window, indexed by due time) and `ripe` (due upserts, oldest first). Every
 * operation touches only what it changes, so a change costs O(log n) however many ids are pending.
 */
export class Coalescer<C extends Keyed = Change> {
  private readonly deletes = new Map<string, Entry<C>>()
  private readonly waiting = new Map<string, Entry<C>>()
  private readonly due = new DueHeap<Entry<C>>()
  /** Insertion order is ripening order, so the first entry is the one that has waited longest. */
  private ripe = new Map<string, Entry<C>>()
  /** The sum of the sizes of the entries in `ripe`: whether they fill a batch by bytes. */
  private ripeBytes = 0
  private readonly handedOver = new HandedOver()
  private closed = false
  /** Counts the operations that may change `receiverIds` (see `receiverIdsVersion`). */
  private membership = 0

  constructor(
    readonly options: CoalescerOptions,
    private readonly codec: KeyedCodec<C>,
  ) {}

  /** Distinct ids waiting to be sent. */
  get size(): number {
    return this.deletes.size + this.waiting.size + this.ripe.size
  }

  get isClosed(): boolean {
    return this.closed
  }

  private current(id: string): Entry<C> | undefined {
    return this.deletes.get(id) ?? this.waiting.get(id) ?? this.ripe.get(id)
  }

  private forget(id: string): void {
    this.deletes.delete(id)
    this.waiting.delete(id)
    const ripe = this.ripe.get(id)
    if (ripe === undefined) return
    this.ripe.delete(id)
    this.ripeBytes -= ripe.size
  }

  private get maxBytes(): number {
    return this.options.batchMaxBytes ?? Number.POSITIVE_INFINITY
  }

  private ripen(id: string, entry: Entry<C>): void {
    this.ripe.set(id, entry)
    this.ripeBytes += entry.size
  }

  private wait(id: string, entry: Entry<C>): void {
    this.waiting.set(id, entry)
    this.due.push(id, entry)
    // Superseded heap items are skipped lazily; rebuilding now and then keeps the heap's size tied
    // to the number of ids rather than to the number of changes.
    if (this.due.length > 2 * this.waiting.size + 64) this.due.rebuild(this.waiting)
  }

  /** Moves waiting upserts whose time has come to `ripe`, in due order. */
  private promote(now: number): void {
    for (let top = this.due.peek(); top !== undefined && top.entry.dueAt <= now; top = this.due.peek()) {
      this.due.pop()
      if (this.waiting.get(top.id) !== top.entry) continue // superseded
      this.waiting.delete(top.id)
      this.ripen(top.id, top.entry)
    }
  }

  offer(change: C, now: number): void {
    const id = this.codec.idOf(change)
    const current = this.current(id)
    if (current === undefined && !this.handedOver.has(id)) this.membership++ // an id new to the receiver's
    if (change._tag === "Delete") {
      // Not debounced: a delete replaces whatever was pending for the id and is due now.
      this.forget(id)
      const { size } = this.codec.measure(change)
      this.deletes.set(id, { change, fingerprint: undefined, firstAt: now, dueAt: now, size })
      return
    }
    const { fingerprint, size } = this.codec.measure(change)
    if (current?.fingerprint === fingerprint) return // same record again: not a change, the window is not reset
    this.forget(id)
    // Back to what the receiver has (or will have): whatever was pending is moot.
    if (this.handedOver.holds(id, fingerprint)) return
    const { debounceWindowMs, debounceMaxWaitMs } = this.options
    // A pending upsert keeps its first time so that max wait holds; a pending delete followed by a
    // re-creation starts afresh.
    const firstAt = current?.change._tag === "Upsert" ? current.firstAt : now
    const entry: Entry<C> = {
      change,
      fingerprint,
      firstAt,
      dueAt: Math.min(now + debounceWindowMs, firstAt + debounceMaxWaitMs),
      size,
    }
    if (entry.dueAt <= now) this.ripen(id, entry)
    else this.wait(id, entry)
  }

  /**
   * Whether a batch should go out at `now`: when a delete is pending, when a full batch is ripe (by
   * count or by bytes), or when the oldest ripe upsert has waited `batchFlushIntervalMs` for
   * company. Once closed, everything is due, ripe or not.
   */
  hasBatch(now: number): boolean {
    this.promote(now)
    if (this.closed) return this.size > 0
    if (this.deletes.size > 0 || this.ripe.size >= this.options.batchMaxSize) return true
    if (payloadBytes(this.ripeBytes, this.ripe.size, 0) > this.maxBytes) return true
    const oldest = this.ripe.values().next()
    return !oldest.done && oldest.value.dueAt + this.options.batchFlushIntervalMs <= now
  }

  /**
   * The next batch if one should go out at `now` (see `hasBatch`); deletes first, then upserts in
   * the order they ripened. It stops growing before it would exceed `batchMaxSize` entries or
   * `batchMaxBytes`; an entry larger than `batchMaxBytes` on its own leaves alone.
   */
  take(now: number): Batch<C> | undefined {
    if (!this.hasBatch(now)) return undefined
    const max = this.options.batchMaxSize
    const batch: Array<C> = []
    let entryBytes = 0
    let upserts = 0
    const sources = this.closed ? [this.deletes, this.ripe, this.waiting] : [this.deletes, this.ripe]
    fill: for (const source of sources) {
      for (const [id, entry] of source) {
        if (batch.length >= max) break fill
        const size = entry.size
        const upsert = entry.change._tag === "Upsert" ? 1 : 0
        const bytes = payloadBytes(entryBytes + size, upserts + upsert, batch.length - upserts + 1 - upsert)
        if (batch.length > 0 && bytes > this.maxBytes) break fill
        source.delete(id)
        if (source === this.ripe) this.ripeBytes -= size
        entryBytes += size
        upserts += upsert
        this.handedOver.handOver(id, entry.fingerprint)
        if (upsert === 0) this.membership++ // leaves the receiver's ids once delivered
        batch.push(entry.change)
      }
    }
    return batch
  }

  /** When `take` may next return something (absent new offers); `Infinity` when nothing is pending. */
  nextWake(now: number): number {
    if (this.hasBatch(now)) return now
    let wake = Number.POSITIVE_INFINITY
    const oldest = this.ripe.values().next()
    if (!oldest.done) wake = oldest.value.dueAt + this.options.batchFlushIntervalMs
    for (let top = this.due.peek(); top !== undefined; top = this.due.peek()) {
      if (this.waiting.get(top.id) === top.entry) {
        wake = Math.min(wake, top.entry.dueAt)
        break
      }
      this.due.pop() // superseded
    }
    return wake
  }

  /**
   * Puts back the changes of a batch that was not delivered, unless a newer change of the same id
   * arrived meanwhile: then the newer one is what must be sent, and the older one must never
   * follow it. The receiver's state of these ids is unknown from now on.
   */
  requeue(batch: Batch<C>, now: number): void {
    // Overdue, so they go out with the next batch instead of waiting for company again.
    const dueAt = now - this.options.batchFlushIntervalMs
    this.membership++
    const front = new Map<string, Entry<C>>()
    for (const change of batch) {
      const id = this.codec.idOf(change)
      this.handedOver.forget(id)
      if (this.current(id) !== undefined) continue
      const { fingerprint, size } = this.codec.measure(change)
      const isDelete = change._tag === "Delete"
      const entry: Entry<C> = {
        change,
        fingerprint: isDelete ? undefined : fingerprint,
        firstAt: dueAt,
        dueAt,
        size,
      }
      if (isDelete) this.deletes.set(id, entry)
      else {
        front.set(id, entry)
        this.ripeBytes += size
      }
    }
    if (front.size > 0) this.ripe = new Map([...front, ...this.ripe])
  }

  /**
   * A change the receiver refused for good: what it holds for the id is unknown. The id stays
   * among those handed over, so that a resync that finds it gone deletes it (a refused delete is
   * retried then); an upsert of it is sent whatever its record.
   */
  setAside(change: C): void {
    this.membership++
    this.handedOver.unknown(this.codec.idOf(change))
  }

  /**
   * Forgets what the receiver was given, so that the next upsert of every id is sent (resync), and
   * returns the ids it may hold: those of the upserts it had been given, and those whose change it
   * refused for good.
   */
  forgetHandedOver(): ReadonlyArray<string> {
    return this.handedOver.forgetRecords()
  }

  /** Ids a previous process handed over (its checkpoint): held by the receiver, record unknown. */
  restoreHandedOver(ids: Iterable<string>): void {
    if (this.handedOver.restore(ids) > 0) this.membership++
  }

  /**
   * Ids the receiver may hold: handed over and not deleted since, and every pending id (a useless
   * delete beats an orphan).
   */
  receiverIds(): Set<string> {
    const ids = new Set(this.handedOver.ids())
    for (const source of [this.deletes, this.waiting, this.ripe]) for (const id of source.keys()) ids.add(id)
    return ids
  }

  /**
   * Changes whenever `receiverIds` may have changed, and only then as far as updates of known ids
   * go: the checkpoint compares it in O(1) instead of collecting every id again. A delete taken
   * counts as a change now, though its id leaves only when its batch is settled; the batch's holder
   * counts that step (see `DebounceBatch`). It starts at 0 with no ids.
   */
  get receiverIdsVersion(): number {
    return this.membership
  }

  /** No more offers are coming: everything pending is due now. */
  close(): void {
    this.closed = true
  }
}
