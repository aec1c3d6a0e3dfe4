/**
 * From an object's metadata plus the group/version/kind it was watched under to the record the
 * receiver stores. Pure, so the watcher, resync and library users share one definition.
 */
import { DEFAULT_RECORD_KEYS, type KeyFilter, type RecordKeys } from "./KeyFilter.js"
import { CLUSTER_SCOPE, type InstanceRecord, RFC3339_SECONDS } from "./Payload.js"

/** Where a resource type lives: from discovery, never from the object (metadata-only lists omit it). */
export interface ResourceKind {
  /** `""` for the core group. */
  readonly group: string
  readonly version: string
  readonly kind: string
}

/** The subset of `ObjectMeta` the record is made of; everything else is ignored. */
export interface ObjectMetadata {
  readonly name?: string | undefined
  readonly namespace?: string | undefined
  readonly labels?: Readonly<Record<string, string>> | null | undefined
  readonly annotations?: Readonly<Record<string, string>> | null | undefined
  readonly creationTimestamp?: string | Date | null | undefined
}

export { DROPPED_ANNOTATION_PREFIXES } from "./KeyFilter.js"

export const apiVersionOf = (kind: ResourceKind): string =>
  kind.group === "" ? kind.version : `${kind.group}/${kind.version}`

export const instanceId = (kind: ResourceKind, namespace: string | undefined, name: string): string =>
  `${namespace || CLUSTER_SCOPE}/${apiVersionOf(kind)}/${kind.kind}/${name}`

/**
 * Keys sorted so that two records with the same content serialise to the same string, which is
 * what change suppression compares.
 */
const sortedCopy = (
  map: Readonly<Record<string, string>> | null | undefined,
  keep: KeyFilter,
): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!map) return out
  for (const key of Object.keys(map).sort()) {
    const value = map[key]
    if (value !== undefined && keep(key)) out[key] = value
  }
  return out
}

/** `2026-02-20T10:00:00Z`: UTC, whole seconds. Kubernetes timestamps already have that form. */
export const formatCreatedAt = (timestamp: string | Date | null | undefined): string => {
  // The API server's form is kept as it is: parsing and printing two Dates per event is not free.
  if (typeof timestamp === "string" && RFC3339_SECONDS.test(timestamp)) return timestamp
  const date = timestamp instanceof Date ? timestamp : new Date(timestamp ?? 0)
  const millis = Number.isNaN(date.getTime()) ? 0 : date.getTime()
  return `${new Date(millis - (((millis % 1000) + 1000) % 1000)).toISOString().slice(0, 19)}Z`
}

/**
 * Returns `undefined` for metadata without a name, which the API server never sends for real objects.
 * `keys` says which labels and annotations are kept (`LABEL_KEYS`, `ANNOTATION_KEYS`).
 */
export const toInstanceRecord = (
  kind: ResourceKind,
  metadata: ObjectMetadata,
  keys: RecordKeys = DEFAULT_RECORD_KEYS,
): InstanceRecord | undefined => {
  const name = metadata.name
  if (!name) return undefined
  const namespace = metadata.namespace || CLUSTER_SCOPE
  return {
    id: instanceId(kind, metadata.namespace, name),
    namespace,
    name,
    kind: kind.kind,
    apiVersion: apiVersionOf(kind),
    apiGroup: kind.group,
    labels: sortedCopy(metadata.labels, keys.labels),
    annotations: sortedCopy(metadata.annotations, keys.annotations),
    createdAt: formatCreatedAt(metadata.creationTimestamp),
  }
}
