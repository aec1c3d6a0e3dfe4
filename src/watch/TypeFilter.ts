/**
 * Which discovered types are watched: `WATCH_RESOURCE_TYPES` (an allowlist) or
 * `EXCLUDE_RESOURCE_TYPES` (a blocklist), matched on the plural or plural.group.
 */
import type { WatchedType } from "./DiscoveryResult.js"

/** `WATCH_RESOURCE_TYPES` / `EXCLUDE_RESOURCE_TYPES`, as in `SyncConfig`. */
export interface ResourceTypeFilter {
  /** Allowlist; when non-empty it wins over `excludeResourceTypes`. */
  readonly watchResourceTypes: ReadonlyArray<string>
  readonly excludeResourceTypes: ReadonlyArray<string>
}

/** Whether a filter entry names the type: by `plural`, or by `plural.group` outside the core group. */
export const matchesType = (type: Pick<WatchedType, "group" | "plural">, entry: string): boolean => {
  const name = entry.trim().toLowerCase()
  return name === type.plural || (type.group !== "" && name === `${type.plural}.${type.group}`)
}

/** The types to watch: those the allowlist names, or, without one, those the blocklist does not. */
export const selectTypes = (
  types: ReadonlyArray<WatchedType>,
  filter: ResourceTypeFilter,
): ReadonlyArray<WatchedType> => {
  const named = (type: WatchedType, entries: ReadonlyArray<string>) =>
    entries.some((entry) => matchesType(type, entry))
  return filter.watchResourceTypes.length > 0
    ? types.filter((type) => named(type, filter.watchResourceTypes))
    : types.filter((type) => !named(type, filter.excludeResourceTypes))
}
