/**
 * Wire schemas of the Kubernetes discovery documents, reduced to the fields discovery reads.
 * Unknown fields are ignored on decode, so newer servers that add fields still decode.
 *
 * Two forms exist:
 * - aggregated discovery (`apidiscovery.k8s.io/v2`, Kubernetes ≥ 1.30; `v2beta1` on 1.26–1.32):
 *   `GET /api` and `GET /apis` each answer one `APIGroupDiscoveryList` holding every group,
 *   version and resource, versions in preference order;
 * - the legacy form: `APIVersions` (`/api`), `APIGroupList` (`/apis`) and one `APIResourceList` per
 *   group-version (`/api/v1`, `/apis/<group>/<version>`).
 */
import * as Schema from "effect/Schema"

/** Asks for aggregated discovery (v2, then v2beta1) and accepts the legacy documents otherwise. */
export const aggregatedDiscoveryAccept =
  "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList," +
  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList," +
  "application/json"

const Strings = Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })

// ---- aggregated (apidiscovery.k8s.io/v2, v2beta1) ------------------------------------------------

export const APIResourceDiscovery = Schema.Struct({
  /** The plural; subresources are nested in `subresources`, never listed here. */
  resource: Schema.String,
  /** `group`/`version` are empty for built-in types (meaning: the enclosing group-version). */
  responseKind: Schema.optional(
    Schema.Struct({
      group: Schema.optional(Schema.String),
      version: Schema.optional(Schema.String),
      kind: Schema.String,
    }),
  ),
  /** `Namespaced` or `Cluster`. */
  scope: Schema.String,
  verbs: Strings,
})
export type APIResourceDiscovery = typeof APIResourceDiscovery.Type

export const APIVersionDiscovery = Schema.Struct({
  version: Schema.String,
  /** Absent when the version is `Stale` (e.g. its aggregated API server is down). */
  resources: Schema.optionalWith(Schema.Array(APIResourceDiscovery), { default: () => [] }),
  /** `Current` or `Stale`; absent means `Current`. */
  freshness: Schema.optional(Schema.String),
})
export type APIVersionDiscovery = typeof APIVersionDiscovery.Type

export const APIGroupDiscovery = Schema.Struct({
  /** The core group (in `/api`) has no name. */
  metadata: Schema.optionalWith(Schema.Struct({ name: Schema.optional(Schema.String) }), {
    default: () => ({}),
  }),
  /** Most preferred first. */
  versions: Schema.optionalWith(Schema.Array(APIVersionDiscovery), { default: () => [] }),
})
export type APIGroupDiscovery = typeof APIGroupDiscovery.Type

export const APIGroupDiscoveryList = Schema.Struct({
  kind: Schema.Literal("APIGroupDiscoveryList"),
  apiVersion: Schema.Literal("apidiscovery.k8s.io/v2", "apidiscovery.k8s.io/v2beta1"),
  items: Schema.optionalWith(Schema.Array(APIGroupDiscovery), { default: () => [] }),
})
export type APIGroupDiscoveryList = typeof APIGroupDiscoveryList.Type

// ---- legacy -------------------------------------------------------------------------------------

/** `GET /api`: the core group's versions, most preferred first. */
export const APIVersions = Schema.Struct({
  kind: Schema.Literal("APIVersions"),
  versions: Strings,
})
export type APIVersions = typeof APIVersions.Type

export const GroupVersionForDiscovery = Schema.Struct({
  groupVersion: Schema.String,
  version: Schema.String,
})

export const APIGroup = Schema.Struct({
  name: Schema.String,
  /** Most preferred first. */
  versions: Schema.optionalWith(Schema.Array(GroupVersionForDiscovery), { default: () => [] }),
  preferredVersion: Schema.optional(GroupVersionForDiscovery),
})
export type APIGroup = typeof APIGroup.Type

/** `GET /apis`. */
export const APIGroupList = Schema.Struct({
  kind: Schema.Literal("APIGroupList"),
  groups: Schema.optionalWith(Schema.Array(APIGroup), { default: () => [] }),
})
export type APIGroupList = typeof APIGroupList.Type

export const APIResource = Schema.Struct({
  /** The plural, or `plural/subresource`. */
  name: Schema.String,
  namespaced: Schema.Boolean,
  kind: Schema.String,
  verbs: Strings,
})
export type APIResource = typeof APIResource.Type

/** `GET /api/v1`, `GET /apis/<group>/<version>`. */
export const APIResourceList = Schema.Struct({
  groupVersion: Schema.String,
  resources: Schema.optionalWith(Schema.Array(APIResource), { default: () => [] }),
})
export type APIResourceList = typeof APIResourceList.Type

/** What `GET /api` answers to `aggregatedDiscoveryAccept`. */
export const CoreDiscoveryDocument = Schema.Union(APIGroupDiscoveryList, APIVersions)
export type CoreDiscoveryDocument = typeof CoreDiscoveryDocument.Type

/** What `GET /apis` answers to `aggregatedDiscoveryAccept`. */
export const GroupsDiscoveryDocument = Schema.Union(APIGroupDiscoveryList, APIGroupList)
export type GroupsDiscoveryDocument = typeof GroupsDiscoveryDocument.Type
