/**
 * The wire contract with the receiver, defined once as Schemas so that receivers written in
 * TypeScript validate with the same code the controller encodes with.
 */
import { Schema } from "effect"

/** Namespace used in ids of cluster-scoped objects, where Kubernetes has none. */
export const CLUSTER_SCOPE = "_cluster"

/** `2026-02-20T10:00:00Z`: RFC 3339 in UTC with whole seconds. */
export const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/

/** RFC 3339 in UTC with whole seconds, the only timestamp form the receiver is promised. */
export const Rfc3339Seconds = Schema.String.pipe(
  Schema.pattern(RFC3339_SECONDS),
  Schema.annotations({ identifier: "Rfc3339Seconds" }),
)

const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })

/** One synced object: its metadata only, never spec, status or managedFields. */
export const InstanceRecord = Schema.Struct({
  /** `namespace/apiVersion/Kind/name`, with `_cluster` as namespace for cluster-scoped objects. */
  id: Schema.NonEmptyString,
  namespace: Schema.NonEmptyString,
  name: Schema.NonEmptyString,
  kind: Schema.NonEmptyString,
  /** The version the controller watches (`apps/v1`, or `v1` for the core group). */
  apiVersion: Schema.NonEmptyString,
  /** `""` for the core group. */
  apiGroup: Schema.String,
  labels: StringMap,
  annotations: StringMap,
  createdAt: Rfc3339Seconds,
}).annotations({ identifier: "InstanceRecord" })
export type InstanceRecord = typeof InstanceRecord.Type

/** The body of a POST to `INSTANCES_ENDPOINT`. Both arrays are always present. */
export const SyncPayload = Schema.Struct({
  upserts: Schema.Array(InstanceRecord),
  deletes: Schema.Array(Schema.NonEmptyString),
})
export type SyncPayload = typeof SyncPayload.Type

/** The body of a POST to `CAPABILITIES_ENDPOINT`: CRD names such as `certificates.cert-manager.io`. */
export const CapabilitiesPayload = Schema.Struct({
  upserts: Schema.Array(Schema.NonEmptyString),
  deletes: Schema.Array(Schema.NonEmptyString),
})
export type CapabilitiesPayload = typeof CapabilitiesPayload.Type

export const decodeSyncPayload = Schema.decodeUnknown(SyncPayload)
export const decodeCapabilitiesPayload = Schema.decodeUnknown(CapabilitiesPayload)

/** `{upserts, deletes}` of a batch of keyed changes, each array in the batch's order. */
export const fromBatch = <C extends { readonly _tag: "Upsert" | "Delete" }, U, D>(
  batch: Iterable<C>,
  upsert: (change: Extract<C, { readonly _tag: "Upsert" }>) => U,
  remove: (change: Extract<C, { readonly _tag: "Delete" }>) => D,
): { readonly upserts: Array<U>; readonly deletes: Array<D> } => {
  const upserts: Array<U> = []
  const deletes: Array<D> = []
  const isUpsert = (change: C): change is Extract<C, { readonly _tag: "Upsert" }> => change._tag === "Upsert"
  const isDelete = (change: C): change is Extract<C, { readonly _tag: "Delete" }> => change._tag === "Delete"
  for (const change of batch) {
    if (isUpsert(change)) upserts.push(upsert(change))
    else if (isDelete(change)) deletes.push(remove(change))
  }
  return { upserts, deletes }
}

/** UTF-8 bytes of a value's JSON as it appears inside a payload (no spaces, as the sink encodes). */
export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), "utf8")

/** `{"upserts":[],"deletes":[]}`: what a payload weighs before its entries. */
export const PAYLOAD_ENVELOPE_BYTES = jsonBytes({ upserts: [], deletes: [] })

/**
 * Bytes of the body of a `{upserts, deletes}` payload whose entries weigh `entryBytes` in all (each
 * entry's own JSON), `upserts` and `deletes` of them: the envelope plus a comma between neighbours.
 */
export const payloadBytes = (entryBytes: number, upserts: number, deletes: number): number =>
  PAYLOAD_ENVELOPE_BYTES + entryBytes + Math.max(0, upserts - 1) + Math.max(0, deletes - 1)
