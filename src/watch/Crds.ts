/**
 * The one watch of CustomResourceDefinitions, published: re-discovery (a CRD created, changed or
 * deleted is a type appearing or vanishing) and the capabilities pipeline (which CRDs the cluster
 * serves) both subscribe, so the API server sees one CRD watch however many read it.
 *
 * A subscriber first gets every CRD published so far, then each change: one that subscribes after
 * the initial list still learns of every CRD. It may see a CRD applied twice around the moment it
 * subscribes; both readers take an apply as "look again", so that costs nothing.
 */
import { Chunk, Context, Data, Effect, Layer, PubSub, type Scope, Stream } from "effect"
import type { KubeClient } from "../kube/KubeClient.js"
import * as Store from "./Store.js"
import * as TypeWatch from "./TypeWatch.js"
import type { WatchEvent } from "./WatchEvent.js"
import { customResourceDefinitions } from "./WatchTarget.js"

export type CrdEvent = Data.TaggedEnum<{
  /** The CRD exists, created or changed (or first seen). */
  Applied: { readonly name: string }
  /** The CRD is gone. */
  Deleted: { readonly name: string }
}>
export const CrdEvent = Data.taggedEnum<CrdEvent>()

export interface CrdsShape {
  /** Every CRD there is (as `Applied`), then every change; for as long as it is read. Never fails. */
  readonly events: Stream.Stream<CrdEvent>
}

export const make = (
  options: TypeWatch.TypeWatchOptions = {},
): Effect.Effect<CrdsShape, never, KubeClient | Scope.Scope> =>
  Effect.gen(function* () {
    const hub = yield* PubSub.unbounded<CrdEvent>()
    /** The CRDs published as existing, for subscribers to start from. */
    const existing = new Set<string>()
    const store = Store.makeWith<CrdEvent>({
      upsert: (meta) => (meta.name ? CrdEvent.Applied({ name: meta.name }) : undefined),
      remove: (_, name) => CrdEvent.Deleted({ name }),
    })
    const publish = (chunk: Chunk.Chunk<WatchEvent>) => {
      const events: Array<CrdEvent> = []
      for (const event of chunk) store.apply(event, events)
      if (events.length === 0) return Effect.void
      for (const event of events) {
        if (event._tag === "Applied") existing.add(event.name)
        else existing.delete(event.name)
      }
      return PubSub.publishAll(hub, events)
    }
    const watch = yield* TypeWatch.make(customResourceDefinitions, options)
    yield* watch.events.pipe(Stream.runForEachChunk(publish), Effect.forkScoped)

    const events = Stream.unwrapScoped(
      Effect.map(PubSub.subscribe(hub), (subscription) =>
        // Subscribed first, then the snapshot: nothing published in between is lost.
        Stream.concat(
          Stream.fromChunk(Chunk.fromIterable(Array.from(existing, (name) => CrdEvent.Applied({ name })))),
          Stream.fromQueue(subscription),
        ),
      ),
    )
    return { events }
  })

export class Crds extends Context.Tag("k8s-vectordb-sync/Crds")<Crds, CrdsShape>() {
  static readonly make = make

  static readonly layer = (options: TypeWatch.TypeWatchOptions = {}): Layer.Layer<Crds, never, KubeClient> =>
    Layer.scoped(Crds, make(options))
}
