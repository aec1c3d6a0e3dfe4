/**
 * What the receiver holds, as far as the keyed state knows: per id handed over, the fingerprint of
 * the last upsert handed to the sink. Recorded when a batch is taken rather than when it is
 * acknowledged, so that a change arriving while its predecessor is in flight is compared with what
 * the receiver will hold; a failed send forgets it again. `undefined`: the receiver may hold the id
 * with a record unknown here (restored from a checkpoint, forgotten by a resync, or refused for
 * good), which no upsert equals, and which a resync that finds the id gone deletes.
 */
import type { Fingerprint } from "./KeyedCodec.js"

export class HandedOver {
  private readonly records = new Map<string, Fingerprint | undefined>()

  /** Whether the id was handed over (and not deleted since). */
  has(id: string): boolean {
    return this.records.has(id)
  }

  /** Whether the receiver holds (or will hold) exactly this upsert of the id. */
  holds(id: string, fingerprint: Fingerprint): boolean {
    return this.records.get(id) === fingerprint
  }

  /** A change of the id was handed to the sink: an upsert's fingerprint, or (a delete) nothing. */
  handOver(id: string, fingerprint: Fingerprint | undefined): void {
    if (fingerprint === undefined) this.records.delete(id)
    else this.records.set(id, fingerprint)
  }

  /** The change of the id was not delivered: what the receiver holds of it is unknown again. */
  forget(id: string): void {
    this.records.delete(id)
  }

  /** The receiver may hold the id, with a record unknown here. */
  unknown(id: string): void {
    this.records.set(id, undefined)
  }

  /** Every id handed over; their records become unknown, so the next upsert of each is sent. */
  forgetRecords(): ReadonlyArray<string> {
    const ids = [...this.records.keys()]
    // Kept with an unknown record, which no upsert matches: the receiver still holds these ids.
    for (const id of ids) this.records.set(id, undefined)
    return ids
  }

  /** Ids handed over earlier (a checkpoint), unless known already; returns how many were new. */
  restore(ids: Iterable<string>): number {
    let added = 0
    for (const id of ids) {
      if (this.records.has(id)) continue
      this.records.set(id, undefined)
      added++
    }
    return added
  }

  ids(): IterableIterator<string> {
    return this.records.keys()
  }
}
