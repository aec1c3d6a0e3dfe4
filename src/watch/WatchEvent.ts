/**
 * What one type's watch yields: the raw events of `Watcher.transition`, with the part of an object
 * they carry. `Store` turns them into changes; the other consumers read them as they are.
 */
import { Data } from "effect"
import type { KubeError } from "../kube/KubeError.js"
import type { ObjectMetadata } from "../record/Instance.js"

/** The part of an object the watcher reads. */
export type Metadata = ObjectMetadata & { readonly uid?: string; readonly resourceVersion?: string }

export type RestartReason = "closed" | "expired" | "idle" | "error"

/** What the watcher saw. A list is `Init`, `InitPage`s, `InitDone`; after it, `Apply` and `Delete`. */
export type WatchEvent = Data.TaggedEnum<{
  /** A list begins: what it does not see by its `InitDone` is gone. */
  Init: {}
  /** Objects seen by the list in progress. */
  InitPage: { readonly objects: ReadonlyArray<Metadata> }
  /** The list is complete; watching goes on from `resourceVersion`. */
  InitDone: { readonly resourceVersion: string }
  /** An object was created or changed. */
  Apply: { readonly object: Metadata }
  /** An object was deleted. */
  Delete: { readonly object: Metadata }
  /**
   * A request failed; the watch goes on, after a backoff (see `Backoff`) unless `retryAtOnce`: the
   * next request is a different one (a LIST after a failed streaming list, which fails while a
   * fresh type's watch cache initialises, when a LIST is served from etcd).
   */
  Error: { readonly error: KubeError; readonly retryAtOnce?: boolean }
  /** The watch request ended and is made again. */
  Restarted: { readonly reason: RestartReason }
}>
export const WatchEvent = Data.taggedEnum<WatchEvent>()
