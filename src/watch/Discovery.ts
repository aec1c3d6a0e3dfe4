/**
 * Discovery: which resource types the cluster serves and which of them the controller watches
 * (the choice of one version per group/resource is `DiscoveryResult`'s, on the documents asked for
 * here).
 *
 * Aggregated discovery (two requests) is tried first; a server that answers the legacy documents
 * is asked per group-version. A group-version that cannot be discovered (an aggregated API that is
 * down: `Stale` in aggregated discovery, 503 in the legacy form) is a failure entry, not a failure
 * of the whole discovery.
 */
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import { KubeClient, type Validated } from "../kube/KubeClient.js"
import type { KubeError } from "../kube/KubeError.js"
import {
  type APIGroupList,
  APIGroupList as APIGroupListSchema,
  APIResourceList as APIResourceListSchema,
  type APIVersions,
  APIVersions as APIVersionsSchema,
  aggregatedDiscoveryAccept,
  CoreDiscoveryDocument,
  GroupsDiscoveryDocument,
} from "./DiscoveryDocument.js"
import {
  type DiscoveryResult,
  fromAggregated,
  fromLegacy,
  groupVersionOf,
  legacyGroups,
  resourceListPath,
} from "./DiscoveryResult.js"

// The result's model and the pure reading stay reachable as `Discovery.*` (the library's namespace).

export interface DiscoverOptions {
  /**
   * `auto` (default) asks for aggregated discovery and falls back to the legacy form when the
   * server answers that; `legacy` goes straight to the legacy form.
   */
  readonly mode?: "auto" | "legacy"
  /** Parallel `APIResourceList` requests in the legacy form. Default 8. */
  readonly concurrency?: number
}

const legacyDiscovery = (
  core: APIVersions,
  groups: APIGroupList,
  concurrency: number,
): Effect.Effect<DiscoveryResult, never, KubeClient> =>
  Effect.gen(function* () {
    const client = yield* KubeClient
    const order = legacyGroups(core, groups)
    const groupVersions = order.flatMap(({ group, versions }) =>
      versions.map((version) => ({ group, version })),
    )
    const answers = yield* Effect.forEach(
      groupVersions,
      ({ group, version }) =>
        client.get(resourceListPath(group, version), { schema: APIResourceListSchema }).pipe(
          Effect.mapError((error: KubeError) => error.message),
          Effect.either,
          Effect.map((answer) => [groupVersionOf(group, version), answer] as const),
        ),
      { concurrency },
    )
    return { ...fromLegacy(order, new Map(answers)), via: "legacy" as const }
  })

const fetchLegacyRoots = Effect.gen(function* () {
  const client = yield* KubeClient
  return yield* Effect.all(
    [client.get("/api", { schema: APIVersionsSchema }), client.get("/apis", { schema: APIGroupListSchema })],
    { concurrency: 2 },
  )
})

/** How the two aggregated documents (`/api`, `/apis`) are fetched. */
interface AggregatedRoots {
  readonly core: Effect.Effect<CoreDiscoveryDocument, KubeError, KubeClient>
  readonly groups: Effect.Effect<GroupsDiscoveryDocument, KubeError, KubeClient>
}

const fetched = <A, I>(path: string, schema: Schema.Schema<A, I>) =>
  Effect.flatMap(KubeClient, (client) => client.get(path, { accept: aggregatedDiscoveryAccept, schema }))

/**
 * Fetched again only when changed: the last answer is kept with its ETag and revalidated. At a
 * thousand CRDs `/apis` is some 650 KB whose decoding takes tens of milliseconds, and discovery
 * runs again on every CRD change and on a timer, mostly to find nothing new.
 */
const revalidated = <A, I>(path: string, schema: Schema.Schema<A, I>) => {
  let kept: Validated<A> | undefined
  return Effect.flatMap(KubeClient, (client) =>
    client.revalidate(path, { accept: aggregatedDiscoveryAccept, schema, kept }),
  ).pipe(
    Effect.map((answer) => {
      kept = answer
      return answer.value
    }),
  )
}

const discoverUsing = (
  options: DiscoverOptions,
  roots: AggregatedRoots,
): Effect.Effect<DiscoveryResult, KubeError, KubeClient> =>
  Effect.gen(function* () {
    const concurrency = options.concurrency ?? 8
    if (options.mode === "legacy") {
      const [core, groups] = yield* fetchLegacyRoots
      return yield* legacyDiscovery(core, groups, concurrency)
    }
    const [core, groups] = yield* Effect.all([roots.core, roots.groups], { concurrency: 2 })
    if (core.kind === "APIGroupDiscoveryList" && groups.kind === "APIGroupDiscoveryList") {
      return { ...fromAggregated(core, groups), via: "aggregated" as const }
    }
    if (core.kind === "APIVersions" && groups.kind === "APIGroupList") {
      return yield* legacyDiscovery(core, groups, concurrency)
    }
    // One answered aggregated and the other not (a proxy in between?): ask both in the legacy form.
    const [legacyCore, legacyGroupList] = yield* fetchLegacyRoots
    return yield* legacyDiscovery(legacyCore, legacyGroupList, concurrency)
  }).pipe(Effect.withSpan("Discovery.discover", { attributes: { mode: options.mode ?? "auto" } }))

/**
 * Discovers the types the cluster serves. Fails only when `/api` or `/apis` cannot be read; a
 * group-version that cannot be discovered is a `failures` entry.
 */
export const discoverWith = (
  options: DiscoverOptions = {},
): Effect.Effect<DiscoveryResult, KubeError, KubeClient> =>
  discoverUsing(options, {
    core: fetched("/api", CoreDiscoveryDocument),
    groups: fetched("/apis", GroupsDiscoveryDocument),
  })

/**
 * `discoverWith(options)` that keeps the aggregated documents it last read and asks for them again
 * with their ETags, so that an unchanged one is answered 304 and not decoded again. One per
 * controller: what it keeps is its own.
 */
export const makeRevalidating = (
  options: DiscoverOptions = {},
): Effect.Effect<Effect.Effect<DiscoveryResult, KubeError, KubeClient>> =>
  Effect.sync(() =>
    discoverUsing(options, {
      core: revalidated("/api", CoreDiscoveryDocument),
      groups: revalidated("/apis", GroupsDiscoveryDocument),
    }),
  )

/** `discoverWith()`: aggregated discovery, with the legacy form as fallback. */
export const discover: Effect.Effect<DiscoveryResult, KubeError, KubeClient> = discoverWith()
