/**
 * One resource type, watched for ever: a metadata-only LIST, then a WATCH from the list's
 * resourceVersion, again and again. Modelled on kube-rs's `watcher`: a small state machine unfolded
 * into a stream, where errors are items and backoff is a separate concern, so the stream itself
 * never ends and never fails.
 *
 * - a WATCH that ends cleanly (server timeout) resumes from the last resourceVersion seen;
 * - `410 Gone` (as HTTP status or as an ERROR event) means the version is too old: list again;
 * - every (re)list compares UIDs with what was known and synthesises deletes for objects that
 *   vanished meanwhile, including an object deleted and re-created under the same name;
 * - other errors back off (about 1 s doubling to 30 s, jittered, reset once healthy); a 403 is
 *   reported and retried rarely, so that narrowed RBAC costs nothing.
 */
import { Data, Deferred, Duration, Effect, Option, Queue, Random, Ref, Schedule, Stream } from "effect"
import * as Change from "../Change.js"
import { instanceId, type ObjectMetadata, type ResourceKind, toInstanceRecord } from "../Instance.js"
import { KubeClient } from "../kube/KubeClient.js"
import { isGone, KubeApiError, type KubeError } from "../kube/KubeError.js"
import { MediaType, type WatchEvent } from "../kube/KubeWatch.js"
import { resourceListPath } from "./Discovery.js"

/** What the watcher needs to know of a type; discovery provides it. */
export interface WatchTarget extends ResourceKind {
  readonly plural: string
  readonly namespaced: boolean
}

export type RestartReason = "closed" | "expired" | "idle" | "error"

export type TypeWatchEvent = Data.TaggedEnum<{
  /** An object changed or vanished. */
  Observed: { readonly change: Change.Change }
  /** A (re)list completed: from here on the type is in sync with the server. */
  Listed: { readonly objects: number; readonly deletes: number }
  /** A request failed; the watch goes on after a backoff (a long one for 403 Forbidden). */
  Failed: { readonly error: KubeError }
  /** The watch request ended and is made again. */
  Restarted: { readonly reason: RestartReason }
}>
export const TypeWatchEvent = Data.taggedEnum<TypeWatchEvent>()

export interface TypeWatchOptions {
  /** LIST page size. */
  readonly pageSize?: number
  /** Server-side WATCH timeout; jittered by up to +50% so that watches do not renew in lockstep. */
  readonly watchTimeout?: Duration.DurationInput
  /** A WATCH that delivers nothing (not even a bookmark) for this long is taken for dead. */
  readonly idleTimeout?: Duration.DurationInput
  readonly initialBackoff?: Duration.DurationInput
  readonly maxBackoff?: Duration.DurationInput
  /** Delay before listing a forbidden type again. */
  readonly forbiddenRetry?: Duration.DurationInput
  /** Shared by many watches to bound the LIST requests in flight; held for one list, pages and all. */
  readonly listPermits?: Effect.Semaphore
}

export interface TypeWatch {
  readonly target: WatchTarget
  /** Never fails, never ends: interrupt it to stop. */
  readonly events: Stream.Stream<TypeWatchEvent>
  /** Ids of the objects currently known: what to delete downstream if the type goes away. */
  readonly knownIds: Effect.Effect<ReadonlyArray<string>>
  /**
   * Lists the type afresh (ending the current watch), emitting upserts for every object and
   * deletes for those that vanished; completes when that list has. Concurrent calls share a list.
   */
  readonly relist: Effect.Effect<ListOutcome>
}

export interface ListOutcome {
  readonly objects: number
  /** Deletes synthesised because objects vanished (or were re-created) since the last list. */
  readonly deletes: number
}

type State = Data.TaggedEnum<{
  List: {}
  Watch: { readonly resourceVersion: string }
}>
const State = Data.taggedEnum<State>()

/** `/api/v1/configmaps`, `/apis/apps/v1/deployments`: every namespace at once. */
export const collectionPath = (target: WatchTarget): string =>
  `${resourceListPath(target.group, target.version)}/${target.plural}`

/** CustomResourceDefinitions: watched for re-discovery and for the capabilities pipeline. */
export const customResourceDefinitions: WatchTarget = {
  group: "apiextensions.k8s.io",
  version: "v1",
  kind: "CustomResourceDefinition",
  plural: "customresourcedefinitions",
  namespaced: false,
}

interface PartialObjectMetadata {
  readonly metadata?: ObjectMetadata & { readonly uid?: string; readonly resourceVersion?: string }
}

const metadataOf = (object: unknown) =>
  typeof object === "object" && object !== null ? (object as PartialObjectMetadata).metadata : undefined

/** `namespace/name`: what identifies an object within its type, with the UID telling incarnations apart. */
const keyOf = (meta: ObjectMetadata) => `${meta.namespace ?? ""}/${meta.name ?? ""}`

/** `isGone` without narrowing: the other branch still handles every `KubeApiError`. */
const expired = (error: KubeError): boolean => isGone(error)

class MalformedEvent extends Data.TaggedError("MalformedEvent")<{ readonly detail: string }> {}

export const make = (
  target: WatchTarget,
  options: TypeWatchOptions = {},
): Effect.Effect<TypeWatch, never, KubeClient> =>
  Effect.gen(function* () {
    const client = yield* KubeClient
    const path = collectionPath(target)
    const pageSize = options.pageSize ?? 500
    const watchTimeout = Duration.toSeconds(options.watchTimeout ?? Duration.minutes(5))
    const idleTimeout = Duration.decode(options.idleTimeout ?? Duration.seconds(watchTimeout * 1.5 + 30))
    const forbiddenRetry = Duration.decode(options.forbiddenRetry ?? Duration.minutes(5))
    const backoff = yield* Schedule.driver(
      Schedule.exponential(options.initialBackoff ?? Duration.seconds(1)).pipe(
        Schedule.union(Schedule.spaced(options.maxBackoff ?? Duration.seconds(30))),
        Schedule.jittered,
      ),
    )

    const state = yield* Ref.make<State>(State.List())
    /** Callers of `relist` waiting for the next complete list. */
    const relistWaiters = yield* Ref.make<ReadonlyArray<Deferred.Deferred<ListOutcome>>>([])
    /** Ends the current watch so that the next phase lists. */
    const relistSignal = yield* Queue.sliding<void>(1)
    /** namespace/name → UID of every object currently known to exist. */
    const known = new Map<string, string>()
    const idOf = (key: string) => {
      const slash = key.indexOf("/")
      return instanceId(target, key.slice(0, slash) || undefined, key.slice(slash + 1))
    }

    const upsertOf = (meta: ObjectMetadata) => {
      const record = toInstanceRecord(target, meta)
      return record === undefined ? [] : [TypeWatchEvent.Observed({ change: Change.upsert(record) })]
    }

    /** Errors become an item and a pause; the state decides what the next phase does. */
    const recover = (error: KubeError): Stream.Stream<TypeWatchEvent> => {
      if (expired(error)) {
        return Stream.fromEffect(
          Effect.as(Ref.set(state, State.List()), TypeWatchEvent.Restarted({ reason: "expired" })),
        )
      }
      const retryAfter = error._tag === "KubeApiError" ? error.retryAfterSeconds : Option.none<number>()
      const wait =
        error._tag === "KubeApiError" && error.code === 403
          ? Effect.sleep(forbiddenRetry)
          : Effect.zipRight(
              Effect.ignore(backoff.next(undefined)),
              Option.match(retryAfter, {
                onNone: () => Effect.void,
                onSome: (s) => Effect.sleep(Duration.seconds(s)),
              }),
            )
      return Stream.concat(
        Stream.make(TypeWatchEvent.Failed({ error })),
        Stream.drain(Stream.fromEffect(wait)),
      )
    }

    const list: Stream.Stream<TypeWatchEvent> = Stream.unwrap(
      // Those who asked before this list started are answered by it; later ones by the next.
      Effect.zipRight(
        Queue.takeAll(relistSignal),
        Effect.map(Ref.getAndSet(relistWaiters, []), (waiting) => listAnswering(waiting)),
      ),
    )

    const listAnswering = (
      waiting: ReadonlyArray<Deferred.Deferred<ListOutcome>>,
    ): Stream.Stream<TypeWatchEvent> =>
      Stream.suspend(() => {
        const seen = new Map<string, string>()
        let resourceVersion = ""
        let deletes = 0
        const pages = client.listPages(path, { accept: MediaType.partialObjectMetadataList, limit: pageSize })
        const permits = options.listPermits
        const bounded =
          permits === undefined
            ? pages
            : Stream.unwrapScoped(
                Effect.as(
                  Effect.acquireRelease(permits.take(1), () => permits.release(1)),
                  pages,
                ),
              )
        return bounded.pipe(
          Stream.mapConcat((page) => {
            resourceVersion = page.metadata.resourceVersion ?? resourceVersion
            const events: Array<TypeWatchEvent> = []
            for (const item of page.items) {
              const meta = metadataOf(item)
              if (!meta?.name) continue
              const key = keyOf(meta)
              const uid = meta.uid ?? ""
              const previous = known.get(key)
              // Deleted and re-created under the same name while we were not watching.
              if (previous !== undefined && previous !== uid) {
                deletes++
                events.push(TypeWatchEvent.Observed({ change: Change.remove(idOf(key)) }))
              }
              seen.set(key, uid)
              events.push(...upsertOf(meta))
            }
            return events
          }),
          Stream.concat(
            Stream.suspend(() => {
              const events: Array<TypeWatchEvent> = []
              for (const key of known.keys()) {
                if (seen.has(key)) continue
                deletes++
                events.push(TypeWatchEvent.Observed({ change: Change.remove(idOf(key)) }))
              }
              known.clear()
              for (const [key, uid] of seen) known.set(key, uid)
              const outcome = { objects: seen.size, deletes }
              events.push(TypeWatchEvent.Listed(outcome))
              return Stream.fromIterable(events).pipe(
                Stream.ensuring(
                  Effect.all([
                    Ref.set(state, State.Watch({ resourceVersion })),
                    backoff.reset,
                    Effect.forEach(waiting, (deferred) => Deferred.succeed(deferred, outcome)),
                  ]),
                ),
              )
            }),
          ),
          // A failed list answers nobody: its waiters move on to the next attempt.
          Stream.catchAll((error) =>
            Stream.concat(
              Stream.drain(Stream.fromEffect(Ref.update(relistWaiters, (later) => [...waiting, ...later]))),
              recover(error),
            ),
          ),
        )
      })

    /** Applies one event to `known`; `resume` holds the version to resume from. */
    const handle = (
      event: WatchEvent,
      resume: { resourceVersion: string },
    ): Effect.Effect<ReadonlyArray<TypeWatchEvent>, KubeError | MalformedEvent> => {
      if (event.type === "ERROR") return Effect.fail(KubeApiError.fromWatchEvent("GET", path, event.object))
      const meta = metadataOf(event.object)
      if (meta?.resourceVersion) resume.resourceVersion = meta.resourceVersion
      if (event.type === "BOOKMARK") return Effect.succeed([])
      if (!meta?.name)
        return Effect.fail(new MalformedEvent({ detail: `${event.type} without metadata.name` }))
      const key = keyOf(meta)
      if (event.type === "DELETED") {
        known.delete(key)
        return Effect.succeed([TypeWatchEvent.Observed({ change: Change.remove(idOf(key)) })])
      }
      known.set(key, meta.uid ?? "")
      return Effect.succeed(upsertOf(meta))
    }

    const watch = (resourceVersion: string): Stream.Stream<TypeWatchEvent> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const resume = { resourceVersion }
          const jitter = yield* Random.nextRange(1, 1.5)
          const saveResume = Effect.suspend(() =>
            Ref.set(state, State.Watch({ resourceVersion: resume.resourceVersion })),
          )
          return client
            .watch(path, {
              accept: MediaType.partialObjectMetadata,
              resourceVersion,
              allowWatchBookmarks: true,
              timeoutSeconds: Math.round(watchTimeout * jitter),
            })
            .pipe(
              Stream.timeoutFail(() => "idle" as const, idleTimeout),
              Stream.interruptWhen(Queue.take(relistSignal)),
              Stream.mapEffect((event) =>
                handle(event, resume).pipe(
                  Effect.catchTag("MalformedEvent", (error) =>
                    Effect.as(
                      Effect.logWarning("ignored a malformed watch event").pipe(
                        Effect.annotateLogs({
                          type: `${target.plural}.${target.group}`,
                          detail: error.detail,
                        }),
                      ),
                      [],
                    ),
                  ),
                ),
              ),
              Stream.flattenIterables,
              Stream.tap(() => backoff.reset),
              Stream.concat(Stream.make(TypeWatchEvent.Restarted({ reason: "closed" }))),
              Stream.ensuring(saveResume),
              Stream.catchAll((error) =>
                error === "idle"
                  ? Stream.make(TypeWatchEvent.Restarted({ reason: "idle" }))
                  : Stream.concat(
                      expired(error)
                        ? Stream.empty
                        : Stream.make(TypeWatchEvent.Restarted({ reason: "error" })),
                      Stream.unwrap(Effect.as(saveResume, recover(error))),
                    ),
              ),
            )
        }),
      )

    const phase = Stream.unwrap(
      Effect.map(Effect.zip(Ref.get(state), Ref.get(relistWaiters)), ([current, waiting]) =>
        waiting.length > 0
          ? list
          : State.$match(current, {
              List: () => list,
              Watch: ({ resourceVersion }) => watch(resourceVersion),
            }),
      ),
    )

    return {
      target,
      events: Stream.forever(phase),
      knownIds: Effect.sync(() => [...known.keys()].map(idOf)),
      relist: Effect.gen(function* () {
        const deferred = yield* Deferred.make<ListOutcome>()
        yield* Ref.update(relistWaiters, (waiting) => [...waiting, deferred])
        yield* Queue.offer(relistSignal, undefined)
        return yield* Deferred.await(deferred)
      }),
    } satisfies TypeWatch
  })
