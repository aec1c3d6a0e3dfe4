/**
 * Which checkpointed ids are gone, once the initial lists have completed: the same rule as a
 * resync's stale ids (see `ops/Resync.ts`), plus care for types that have not listed. Pure.
 */
import type { TypeStatus } from "../watch/Watchers.js"

export interface GoneOutcome {
  /** Ids to delete downstream: their type is not watched any more, or it listed without them. */
  readonly gone: ReadonlyArray<string>
  /**
   * Ids whose type is watched but has not listed (forbidden, failing): nobody can tell whether
   * they exist, so they are kept (and stay in the checkpoint) rather than deleted.
   */
  readonly undecided: ReadonlyArray<string>
}

/** `apiVersion/Kind` of an id `namespace/apiVersion/Kind/name`. */
const typeOf = (id: string): string => {
  const segments = id.split("/")
  return segments.slice(1, -1).join("/")
}

export const goneIds = (
  checkpointed: Iterable<string>,
  known: ReadonlySet<string>,
  types: ReadonlyArray<Pick<TypeStatus, "apiVersion" | "kind" | "synced">>,
): GoneOutcome => {
  const listed = new Map(types.map((type) => [`${type.apiVersion}/${type.kind}`, type.synced]))
  const gone: Array<string> = []
  const undecided: Array<string> = []
  for (const id of checkpointed) {
    if (known.has(id)) continue
    const synced = listed.get(typeOf(id))
    if (synced === false) undecided.push(id)
    else gone.push(id)
  }
  return { gone, undecided }
}
