/**
 * The wire shapes of list and watch requests and responses, and the media types that make them
 * metadata-only. The watcher builds its state machine on these; this module only names them.
 */
import * as Schema from "effect/Schema"

/** Media types for `Accept`. The metadata-only ones make the server strip spec, status and data. */
export const MediaType = {
  json: "application/json",
  /** For LIST: items become `PartialObjectMetadata` (apiVersion meta.k8s.io/v1, metadata only). */
  partialObjectMetadataList: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
  /** For WATCH (and GET of one object): event objects become `PartialObjectMetadata`. */
  partialObjectMetadata: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
} as const

export const ListMeta = Schema.Struct({
  resourceVersion: Schema.optional(Schema.String),
  continue: Schema.optional(Schema.String),
  remainingItemCount: Schema.optional(Schema.Number),
})
export type ListMeta = typeof ListMeta.Type

/** One page of a LIST. Go encodes an empty list's items as `null`; it decodes to `[]`. */
export const ListPage = Schema.Struct({
  metadata: Schema.optionalWith(ListMeta, { default: () => ({}) }),
  items: Schema.optionalWith(
    Schema.transform(Schema.NullOr(Schema.Array(Schema.Unknown)), Schema.Array(Schema.Unknown), {
      strict: true,
      decode: (items) => items ?? [],
      encode: (items) => items,
    }),
    { default: () => [] },
  ),
})
export type ListPage = typeof ListPage.Type

export interface WatchParams {
  /** Resume after this version; omit (or `"0"`) to start from the cache's current state. */
  readonly resourceVersion?: string | undefined
  /** Server-side timeout: the server ends the watch cleanly after this many seconds. */
  readonly timeoutSeconds?: number | undefined
  /** Ask for BOOKMARK events so that a resumed watch rarely gets 410 Gone. Default true. */
  readonly allowWatchBookmarks?: boolean | undefined
  readonly labelSelector?: string | undefined
  readonly fieldSelector?: string | undefined
}

/** The query of a WATCH request (`watch=1` plus the given parameters, nothing for absent ones). */
export const watchQuery = (params: WatchParams): Record<string, string> => {
  const query: Record<string, string> = { watch: "1" }
  if (params.allowWatchBookmarks ?? true) query.allowWatchBookmarks = "true"
  if (params.resourceVersion !== undefined) query.resourceVersion = params.resourceVersion
  if (params.timeoutSeconds !== undefined) query.timeoutSeconds = String(params.timeoutSeconds)
  if (params.labelSelector !== undefined) query.labelSelector = params.labelSelector
  if (params.fieldSelector !== undefined) query.fieldSelector = params.fieldSelector
  return query
}
