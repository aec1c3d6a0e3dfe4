/**
 * How the keyed state sees a change: its id, a fingerprint that tells whether an upsert changes
 * anything downstream, and its size in a payload. One codec per kind of change (instances here,
 * CRD capabilities in `capabilities/`), so the same `Coalescer` serves both pipelines.
 */
import { type Change, idOf } from "../record/Change.js"
import { fingerprint } from "../record/Fingerprint.js"
import { jsonBytes } from "../record/Payload.js"

/** What the coalescer works on: upserts and deletes, keyed. */
export interface Keyed {
  readonly _tag: "Upsert" | "Delete"
}

/** How to key and compare changes of one kind. */
export interface KeyedCodec<C extends Keyed> {
  readonly idOf: (change: C) => string
  /**
   * Once per change offered or put back. Both figures come from one serialisation: a record is
   * serialised once on its way to the keyed state, not once per figure.
   */
  readonly measure: (change: C) => Measure
}

export interface Measure {
  /** Upserts only: equal fingerprints mean the update changes nothing downstream. */
  readonly fingerprint: Fingerprint
  /**
   * UTF-8 bytes of the change's entry in the payload, as the sink will encode it (its JSON
   * without separators); the envelope and commas are counted by `payloadBytes`.
   */
  readonly size: number
}

/** Compared for equality only; a digest where the compared value is large. */
export type Fingerprint = string | number

/** Instance changes: keyed by record id, compared by a digest of their serialised record. */
export const instanceCodec: KeyedCodec<Change> = {
  idOf,
  measure: (change) => {
    if (change._tag === "Delete") return { fingerprint: 0, size: jsonBytes(change.id) }
    const json = JSON.stringify(change.record)
    return { fingerprint: fingerprint(json), size: Buffer.byteLength(json, "utf8") }
  },
}
