/**
 * Which objects of the watched types are synced: namespaces selected by name or glob
 * (`WATCH_NAMESPACES`, `EXCLUDE_NAMESPACES`; cluster-scoped objects are unaffected) and the
 * per-object opt-out annotation. The label selector is applied by the API server instead (see
 * `WatchStream`), which reports an object that stops matching as deleted.
 *
 * An object the filter does not admit is, to the store, an object that does not exist: it is
 * never sent, and one that was sent is deleted downstream when it stops being admitted.
 */
import { patternMatcher as matcher } from "../record/KeyFilter.js"
import type { Metadata } from "./WatchEvent.js"

/** An object (or a namespace) annotated `"true"` with this key is not synced. */
export const excludeAnnotation = "vectordb-sync.io/exclude"

export interface ObjectFilterOptions {
  /** Namespaces whose objects are synced, as names or globs (`dev-*`); empty: every namespace. */
  readonly watchNamespaces: ReadonlyArray<string>
  /** Namespaces whose objects are not synced, as names or globs; applied after `watchNamespaces`. */
  readonly excludeNamespaces: ReadonlyArray<string>
}

export interface ObjectFilter {
  readonly admits: (meta: Metadata) => boolean
  /**
   * The one namespace the filter selects, when it names exactly one and excludes nothing: the
   * watches of namespaced types can then ask the API server for that namespace only.
   */
  readonly onlyNamespace: string | undefined
}

export const isOptedOut = (meta: Pick<Metadata, "annotations">): boolean =>
  meta.annotations?.[excludeAnnotation] === "true"

export const make = (options: ObjectFilterOptions): ObjectFilter => {
  const included = options.watchNamespaces.length === 0 ? undefined : matcher(options.watchNamespaces)
  const excluded = options.excludeNamespaces.length === 0 ? undefined : matcher(options.excludeNamespaces)
  const [only] = options.watchNamespaces
  return {
    admits: (meta) => {
      if (isOptedOut(meta)) return false
      const namespace = meta.namespace
      if (namespace === undefined || namespace === "") return true
      if (included !== undefined && !included(namespace)) return false
      return excluded === undefined || !excluded(namespace)
    },
    onlyNamespace:
      options.watchNamespaces.length === 1 &&
      only !== undefined &&
      !only.includes("*") &&
      (excluded === undefined || !excluded(only))
        ? only
        : undefined,
  }
}

/** Every object: the filter of a controller without scoping options. */
export const all: ObjectFilter = make({ watchNamespaces: [], excludeNamespaces: [] })
