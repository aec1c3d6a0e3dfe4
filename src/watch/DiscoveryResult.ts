/**
 * What discovery finds, as data, and how it is read from the discovery documents: one
 * `WatchedType` per group/resource, at the group's preferred version when that version serves
 * the resource (else the most preferred version that does), so that an object is synced once under
 * one apiVersion. Subresources and types without both `list` and `watch` are left out. Pure:
 * `Discovery` makes the requests.
 */
import * as Either from "effect/Either"
import type { ResourceKind } from "../record/Instance.js"
import type {
  APIGroupDiscoveryList,
  APIGroupList,
  APIResourceList,
  APIVersions,
} from "./DiscoveryDocument.js"

// ---- model --------------------------------------------------------------------------------------

/** A resource type to watch: one per group/resource. */
export interface WatchedType extends ResourceKind {
  /** The resource name in URLs, e.g. `deployments`. */
  readonly plural: string
  readonly namespaced: boolean
  /** Stable identity across versions: `plural.group`, or `plural` for the core group. */
  readonly key: string
}

export interface DiscoveryFailure {
  /** `v1` for the core group, `<group>/<version>` otherwise. */
  readonly groupVersion: string
  readonly error: string
}

export interface DiscoveryResult {
  /** Sorted by `key`. */
  readonly types: ReadonlyArray<WatchedType>
  /**
   * Group-versions that could not be discovered. The types of their groups may be incomplete
   * (see `failedGroups`): a consumer should keep what it watches in those groups until a later
   * discovery succeeds, rather than stop it.
   */
  readonly failures: ReadonlyArray<DiscoveryFailure>
  /** Which form of discovery the server answered. */
  readonly via: "aggregated" | "legacy"
}

/** A resource as one group-version serves it, before version selection. */
export interface ServedResource {
  readonly plural: string
  readonly kind: string
  readonly namespaced: boolean
  readonly verbs: ReadonlyArray<string>
}

/** One version of a group: what it serves, or why that is unknown. */
export type ServedVersion =
  | { readonly _tag: "Served"; readonly version: string; readonly resources: ReadonlyArray<ServedResource> }
  | { readonly _tag: "Failed"; readonly version: string; readonly error: string }

/** A group with its versions, most preferred first. The core group is `""`. */
export interface ServedGroup {
  readonly group: string
  readonly versions: ReadonlyArray<ServedVersion>
}

export const typeKey = (group: string, plural: string): string =>
  group === "" ? plural : `${plural}.${group}`

export const groupVersionOf = (group: string, version: string): string =>
  group === "" ? version : `${group}/${version}`

/** The group of a `DiscoveryFailure.groupVersion` (`""` for `v1`). */
export const groupOf = (groupVersion: string): string => {
  const slash = groupVersion.indexOf("/")
  return slash < 0 ? "" : groupVersion.slice(0, slash)
}

/** Groups whose types may be incomplete in `result` because a version of theirs failed. */
export const failedGroups = (result: Pick<DiscoveryResult, "failures">): ReadonlySet<string> =>
  new Set(result.failures.map((f) => groupOf(f.groupVersion)))

// ---- version selection --------------------------------------------------------------------------

const watchable = (resource: ServedResource): boolean =>
  resource.verbs.includes("list") && resource.verbs.includes("watch")

/**
 * One `WatchedType` per group/resource, at the most preferred version that serves it.
 *
 * A resource found only below a failed version is withheld: the failed version might serve it
 * too and would then be the right version, so watching it now under the lower one would change
 * its ids when the failed version comes back. The failure entry covers it.
 */
export const resolveTypes = (
  groups: ReadonlyArray<ServedGroup>,
): Pick<DiscoveryResult, "types" | "failures"> => {
  const chosen = new Map<string, WatchedType>()
  const failures: Array<DiscoveryFailure> = []
  for (const { group, versions } of groups) {
    const seen = new Set<string>()
    let failedAbove = false
    for (const served of versions) {
      if (served._tag === "Failed") {
        failures.push({ groupVersion: groupVersionOf(group, served.version), error: served.error })
        failedAbove = true
        continue
      }
      for (const resource of served.resources) {
        // Subresources (`pods/log`) are never watched; aggregated discovery nests them anyway.
        if (resource.plural.includes("/") || seen.has(resource.plural)) continue
        seen.add(resource.plural)
        const key = typeKey(group, resource.plural)
        if (failedAbove || !watchable(resource) || chosen.has(key)) continue
        chosen.set(key, {
          group,
          version: served.version,
          kind: resource.kind,
          plural: resource.plural,
          namespaced: resource.namespaced,
          key,
        })
      }
    }
  }
  const types = [...chosen.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return { types, failures }
}

// ---- aggregated form ----------------------------------------------------------------------------

/** The groups of an aggregated document (`/api` or `/apis`); `Stale` versions become failures. */
export const aggregatedGroups = (list: APIGroupDiscoveryList): ReadonlyArray<ServedGroup> =>
  list.items.map((item) => ({
    group: item.metadata.name ?? "",
    versions: item.versions.map((v): ServedVersion => {
      if (v.freshness !== undefined && v.freshness !== "Current") {
        return {
          _tag: "Failed",
          version: v.version,
          error: `discovery information is ${v.freshness} (the group's API server did not answer)`,
        }
      }
      return {
        _tag: "Served",
        version: v.version,
        resources: v.resources.flatMap((r) =>
          // Without a kind there is no id to give its objects.
          r.responseKind === undefined || r.responseKind.kind === ""
            ? []
            : [
                {
                  plural: r.resource,
                  kind: r.responseKind.kind,
                  namespaced: r.scope === "Namespaced",
                  verbs: r.verbs,
                },
              ],
        ),
      }
    }),
  }))

/** Discovery from the aggregated answers of `GET /api` and `GET /apis`. */
export const fromAggregated = (
  core: APIGroupDiscoveryList,
  groups: APIGroupDiscoveryList,
): Pick<DiscoveryResult, "types" | "failures"> =>
  resolveTypes([...aggregatedGroups(core), ...aggregatedGroups(groups)])

// ---- legacy form --------------------------------------------------------------------------------

/** A group and the versions to ask for, most preferred first. */
export interface LegacyGroup {
  readonly group: string
  readonly versions: ReadonlyArray<string>
}

/** The groups of `GET /api` and `GET /apis`: the preferred version first, then the others in order. */
export const legacyGroups = (core: APIVersions, groups: APIGroupList): ReadonlyArray<LegacyGroup> => [
  ...(core.versions.length === 0 ? [] : [{ group: "", versions: core.versions }]),
  ...groups.groups.map((g) => {
    const all = g.versions.map((v) => v.version)
    const preferred = g.preferredVersion?.version
    return {
      group: g.name,
      versions:
        preferred === undefined || !all.includes(preferred)
          ? all
          : [preferred, ...all.filter((v) => v !== preferred)],
    }
  }),
]

/** The path of a group-version's `APIResourceList`. */
export const resourceListPath = (group: string, version: string): string =>
  group === "" ? `/api/${version}` : `/apis/${group}/${version}`

const servedResources = (list: APIResourceList): ReadonlyArray<ServedResource> =>
  list.resources.map((r) => ({ plural: r.name, kind: r.kind, namespaced: r.namespaced, verbs: r.verbs }))

/**
 * Discovery from the legacy documents: `answers` holds, per group-version (`v1`, `apps/v1`), its
 * `APIResourceList` or why it could not be had. A group-version without an answer is a failure.
 */
export const fromLegacy = (
  groups: ReadonlyArray<LegacyGroup>,
  answers: ReadonlyMap<string, Either.Either<APIResourceList, string>>,
): Pick<DiscoveryResult, "types" | "failures"> =>
  resolveTypes(
    groups.map(({ group, versions }) => ({
      group,
      versions: versions.map((version): ServedVersion => {
        const answer = answers.get(groupVersionOf(group, version))
        if (answer === undefined) return { _tag: "Failed", version, error: "not discovered" }
        return Either.match(answer, {
          onLeft: (error) => ({ _tag: "Failed", version, error }),
          onRight: (list) => ({ _tag: "Served", version, resources: servedResources(list) }),
        })
      }),
    })),
  )
