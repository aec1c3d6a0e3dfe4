/**
 * What a type's watcher knows to exist, kept downstream of its raw events: the UID of every object
 * by `namespace/name`, and the changes those events mean for the receiver.
 *
 * - every list compares UIDs with what was known, so that an object deleted and re-created under
 *   the same name while nobody watched is deleted first, then upserted;
 * - at a list's `InitDone`, whatever was known and not seen by it is gone: its delete is
 *   synthesised (the watch missed it);
 * - what a list that breaks off has seen (and sent) is known from then on: the next list deletes
 *   it if it does not see it again, and so does a stop of the type;
 * - an object the `ObjectFilter` does not admit does not exist as far as the store knows: one that
 *   stops being admitted (opt-out annotation added) is deleted, one that starts is upserted.
 *
 * Synchronous and single-consumer: it lives in the fiber that reads the type's events.
 */
import * as Change from "../record/Change.js"
import { instanceId, type ResourceKind, toInstanceRecord } from "../record/Instance.js"
import type { RecordKeys } from "../record/KeyFilter.js"
import type { Metadata, WatchEvent } from "./WatchEvent.js"
import type { ListOutcome } from "./WatchStream.js"

export interface StoreOf<C> {
  /** Applies one event, pushing the changes it means onto `out`; a completed list returns its outcome. */
  readonly apply: (event: WatchEvent, out: Array<C>) => ListOutcome | undefined
  /** A removal of every object currently known: what to send downstream if the type goes away. */
  readonly known: () => ReadonlyArray<C>
  /** How many objects are known. */
  readonly size: () => number
}

/** `namespace/name`: what identifies an object within its type, with the UID telling incarnations apart. */
const keyOf = (meta: Metadata) => `${meta.namespace ?? ""}/${meta.name ?? ""}`

/** The store of instances: changes in record form, for the pipeline. */
export type Store = StoreOf<Change.Change>

/** `admits`: whether an object counts at all (see `ObjectFilter`); `keys`: which labels and annotations the records keep. */
export const make = (
  kind: ResourceKind,
  admits: (meta: Metadata) => boolean = () => true,
  keys?: RecordKeys,
): Store =>
  makeWith<Change.Change>({
    admits,
    upsert: (meta) => {
      const record = toInstanceRecord(kind, meta, keys)
      return record === undefined ? undefined : Change.upsert(record)
    },
    remove: (namespace, name) => Change.remove(instanceId(kind, namespace, name)),
  })

/** What the changes of a store are: an object is there (now like this), or gone. */
export interface ChangesOf<C> {
  /** Whether an object counts at all (see `ObjectFilter`); default: every object. */
  readonly admits?: (meta: Metadata) => boolean
  readonly upsert: (meta: Metadata) => C | undefined
  readonly remove: (namespace: string | undefined, name: string) => C
}

export const makeWith = <C>(changes: ChangesOf<C>): StoreOf<C> => {
  /** namespace/name → UID of every object currently known to exist. */
  let known = new Map<string, string>()
  /** The list in progress: what it has seen, and the deletes it synthesised so far. */
  let seen: Map<string, string> | undefined
  let deletes = 0
  const admits = changes.admits ?? (() => true)

  const removal = (key: string) => {
    const slash = key.indexOf("/")
    return changes.remove(key.slice(0, slash) || undefined, key.slice(slash + 1))
  }
  const upsert = (meta: Metadata, out: Array<C>) => {
    const change = changes.upsert(meta)
    if (change !== undefined) out.push(change)
  }

  /** An object that stopped being admitted: gone downstream, if it was ever known. */
  const forget = (key: string, out: Array<C>): undefined => {
    const wasSeen = seen?.delete(key) === true
    if (known.delete(key) || wasSeen) out.push(removal(key))
    return undefined
  }

  const apply = (event: WatchEvent, out: Array<C>): ListOutcome | undefined => {
    switch (event._tag) {
      case "Init":
        // A list that broke off has sent what it saw: those objects are known now, so that this
        // list deletes the ones it does not see again.
        if (seen !== undefined) for (const [key, uid] of seen) known.set(key, uid)
        seen = new Map()
        deletes = 0
        return undefined
      case "InitPage": {
        if (seen === undefined) seen = new Map()
        for (const meta of event.objects) {
          if (!admits(meta)) continue
          const key = keyOf(meta)
          const uid = meta.uid ?? ""
          const previous = known.get(key)
          seen.set(key, uid)
          if (previous !== undefined && previous !== uid) {
            deletes++
            out.push(removal(key))
          }
          upsert(meta, out)
        }
        return undefined
      }
      case "InitDone": {
        const listed = seen ?? new Map<string, string>()
        for (const key of known.keys()) {
          if (listed.has(key)) continue
          deletes++
          out.push(removal(key))
        }
        known = listed
        seen = undefined
        const outcome = { objects: listed.size, deletes }
        deletes = 0
        return outcome
      }
      case "Apply":
        if (!admits(event.object)) return forget(keyOf(event.object), out)
        known.set(keyOf(event.object), event.object.uid ?? "")
        upsert(event.object, out)
        return undefined
      case "Delete": {
        const key = keyOf(event.object)
        if (!admits(event.object)) return forget(key, out)
        known.delete(key)
        seen?.delete(key)
        out.push(removal(key))
        return undefined
      }
      case "Error":
      case "Restarted":
        return undefined
    }
  }

  return {
    apply,
    // With what the list in progress has seen (and sent) so far.
    known: () =>
      Array.from(seen === undefined ? known.keys() : new Set([...known.keys(), ...seen.keys()]), removal),
    size: () => known.size,
  }
}

/** Ids of the objects an instance store knows: what Resync compares with the receiver. */
export const knownIds = (store: Store): ReadonlyArray<string> =>
  store.known().map((change) => Change.idOf(change))
