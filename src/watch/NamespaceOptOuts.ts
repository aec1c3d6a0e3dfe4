/**
 * The namespaces annotated `vectordb-sync.io/exclude: "true"`, kept by a metadata-only watch of
 * namespaces: no object of such a namespace is synced.
 *
 * A namespace that gains the annotation must have its objects deleted downstream, one that loses
 * it must have them sent; the stores of the watched types keep UIDs, not objects, so both are done
 * by relisting the namespaced types (in their own fibers, so that the order of each type's changes
 * holds). `changes` says when; it is rare, and a burst of annotations is one relist.
 */
import { Deferred, Effect, type Scope, Stream, SubscriptionRef } from "effect"
import type { KubeClient } from "../kube/KubeClient.js"
import { isOptedOut } from "./ObjectFilter.js"
import * as TypeWatch from "./TypeWatch.js"
import type { WatchEvent } from "./WatchEvent.js"
import type { WatchTarget } from "./WatchTarget.js"

const namespaces: WatchTarget = {
  group: "",
  version: "v1",
  kind: "Namespace",
  plural: "namespaces",
  namespaced: false,
}

export interface NamespaceOptOuts {
  /** Whether objects of this namespace are excluded. Synchronous: read for every object. */
  readonly has: (namespace: string) => boolean
  /**
   * Done once the namespaces have been listed, or the list failed (a controller not allowed to
   * list namespaces syncs every namespace rather than nothing).
   */
  readonly known: Effect.Effect<void>
  /** Every change of the set after `known`, as the new set. */
  readonly changes: Stream.Stream<ReadonlySet<string>>
}

export const make = (
  options: TypeWatch.TypeWatchOptions = {},
): Effect.Effect<NamespaceOptOuts, never, KubeClient | Scope.Scope> =>
  Effect.gen(function* () {
    let current: ReadonlySet<string> = new Set()
    /** What the list in progress has seen opted out. */
    let listing: Set<string> | undefined
    const published = yield* SubscriptionRef.make(current)
    const known = yield* Deferred.make<void>()

    const step = (set: Set<string>, event: WatchEvent): void => {
      switch (event._tag) {
        case "InitPage":
          for (const meta of event.objects) if (meta.name && isOptedOut(meta)) listing?.add(meta.name)
          return
        case "Apply":
          if (!event.object.name) return
          if (isOptedOut(event.object)) set.add(event.object.name)
          else set.delete(event.object.name)
          return
        case "Delete":
          if (event.object.name) set.delete(event.object.name)
          return
        default:
          return
      }
    }

    const apply = (events: Iterable<WatchEvent>) =>
      Effect.suspend(() => {
        const next = new Set(current)
        let listed = false
        let failed = false
        for (const event of events) {
          if (event._tag === "Init") listing = new Set()
          else if (event._tag === "InitDone" && listing !== undefined) {
            next.clear()
            for (const name of listing) next.add(name)
            listing = undefined
            listed = true
          } else if (event._tag === "Error") failed = true
          else step(next, event)
        }
        const changed = next.size !== current.size || [...next].some((name) => !current.has(name))
        current = next
        return Effect.zipRight(
          changed ? SubscriptionRef.set(published, next) : Effect.void,
          listed || failed ? Deferred.succeed(known, undefined) : Effect.void,
        )
      })

    const watch = yield* TypeWatch.make(namespaces, options)
    yield* watch.events.pipe(Stream.runForEachChunk(apply), Effect.forkScoped)

    return {
      has: (namespace) => current.has(namespace),
      known: Deferred.await(known),
      // The first element is the set as it is when read: skipped, only changes count.
      changes: Stream.drop(published.changes, 1),
    } satisfies NamespaceOptOuts
  })
