/**
 * From an object's metadata plus the group/version/kind it was watched under to the record the
 * receiver stores. Pure, so the watcher, resync and library users share one definition.
 */
import { CLUSTER_SCOPE, type InstanceRecord } from "./Payload.js"

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

/**
 * Annotations that tools write for their own bookkeeping (last-applied configuration, Helm release
 * names, revision counters) carry no meaning for someone asking what runs here, and some are huge.
 */
export const DROPPED_ANNOTATION_PREFIXES: ReadonlyArray<string> = [
  "kubectl.kubernetes.io/",
  "meta.helm.sh/",
  "helm.sh/",
  "deployment.kubernetes.io/",
  "control-plane.alpha.kubernetes.io/",
  "kubernetes.io/",
]

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
  keep: (key: string) => boolean = () => true,
): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!map) return out
  for (const key of Object.keys(map).sort()) {
    const value = map[key]
    if (value !== undefined && keep(key)) out[key] = value
  }
  return out
}

const keptAnnotation = (key: string): boolean =>
  !DROPPED_ANNOTATION_PREFIXES.some((prefix) => key.startsWith(prefix))

/** `2026-02-20T10:00:00Z`: UTC, whole seconds. Kubernetes timestamps already have that form. */
export const formatCreatedAt = (timestamp: string | Date | null | undefined): string => {
  const date = timestamp instanceof Date ? timestamp : new Date(timestamp ?? 0)
  const millis = Number.isNaN(date.getTime()) ? 0 : date.getTime()
  return `${new Date(millis - (((millis % 1000) + 1000) % 1000)).toISOString().slice(0, 19)}Z`
}

/** Returns `undefined` for metadata without a name, which the API server never sends for real objects. */
export const toInstanceRecord = (
  kind: ResourceKind,
  metadata: ObjectMetadata,
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
    labels: sortedCopy(metadata.labels),
    annotations: sortedCopy(metadata.annotations, keptAnnotation),
    createdAt: formatCreatedAt(metadata.creationTimestamp),
  }
}
