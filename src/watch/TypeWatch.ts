/**
 * One resource type, watched for ever: a metadata-only LIST, then a WATCH from the list's
 * resourceVersion, again and again. Modelled on kube-rs's `watcher`: a small state machine (list,
 * or watch from a version) where each step performs one request and hands what it saw on as
 * events; errors are events too, followed by a backoff, so the watch never ends and never fails.
 *
 * - a WATCH that ends cleanly (server timeout) resumes from the last resourceVersion seen;
 * - `410 Gone` (as HTTP status or as an ERROR event) means the version is too old: list again;
 * - every (re)list compares UIDs with what was known and synthesises deletes for objects that
 *   vanished meanwhile, including an object deleted and re-created under the same name;
 * - other errors back off (about 1 s doubling to 30 s, jittered); the backoff resets only once a
 *   watch has stayed open for a healthy period, so a watch that drops after every event does not
 *   retry every second for ever; a 403 is reported and retried rarely, so that narrowed RBAC costs
 *   nothing.
 *
 * Cost: at a thousand types this runs a thousand times, mostly idle. A running watch is one fiber
 * waiting on the next read of its response body (`KubeClient.openLines`), plus the UIDs it knows;
 * each network read is decoded and handed on as one batch.
 */
import { Chunk, Data, Deferred, Duration, Effect, Option, Random, Schedule, Stream } from "effect"
import { KubeClient } from "../kube/KubeClient.js"
import {
  isGone,
  KubeApiError,
  KubeDecodeError,
  type KubeError,
  KubeTransportError,
} from "../kube/KubeError.js"
import { excerpt } from "../kube/KubeStatus.js"
import { ListPage, MediaType, watchQuery } from "../kube/KubeWatch.js"
import * as Change from "../record/Change.js"
import { instanceId, type ObjectMetadata, type ResourceKind, toInstanceRecord } from "../record/Instance.js"
import * as Backoff from "../schedule/Backoff.js"
import { resourceListPath } from "./Discovery.js"
import { type ListSlots, unbounded as unboundedSlots } from "./ListSlots.js"

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
  /** A watch open this long without failing counts as healthy: the backoff starts again from its first delay. */
  readonly healthyAfter?: Duration.DurationInput
  /** Delay before listing a forbidden type again. */
  readonly forbiddenRetry?: Duration.DurationInput
  /** Shared by many watches to bound the initial lists in flight (LIST, or the initial events of a watch). */
  readonly listSlots?: ListSlots
  /**
   * Start with the streaming initial list ("WatchList": `sendInitialEvents=true`) rather than LIST
   * then WATCH. A server that refuses or ignores it is listed the classic way. Default true.
   */
  readonly watchList?: boolean
}

/** The bookmark annotation that ends the initial events of a streaming list. */
const INITIAL_EVENTS_END = "k8s.io/initial-events-end"

/** The server said no to a streaming initial list (feature off, or too old to know the parameters). */
const refusesWatchList = (error: KubeError): boolean =>
  error._tag === "KubeApiError" && (error.code === 400 || error.code === 422)

/** Where a running watch hands its events: one batch per network read, awaited (back-pressure). */
export type Emit = (events: ReadonlyArray<TypeWatchEvent>) => Effect.Effect<void>

export interface TypeWatch {
  readonly target: WatchTarget
  /** Runs the watch, handing each batch of events to `emit`. Never fails, never ends: interrupt it to stop. */
  readonly run: (emit: Emit) => Effect.Effect<never>
  /** `run` as a Stream, for a single consumer. */
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

/** What the next step does: list, or watch from a version. */
type Phase = { readonly _tag: "List" } | { readonly _tag: "Watch"; readonly resourceVersion: string }
const List: Phase = { _tag: "List" }

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

type Metadata = ObjectMetadata & { readonly uid?: string; readonly resourceVersion?: string }

const metadataOf = (object: unknown): Metadata | undefined =>
  typeof object === "object" && object !== null
    ? (object as { readonly metadata?: Metadata }).metadata
    : undefined

/** `namespace/name`: what identifies an object within its type, with the UID telling incarnations apart. */
const keyOf = (meta: ObjectMetadata) => `${meta.namespace ?? ""}/${meta.name ?? ""}`

const WATCH_EVENT_TYPES = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"])

/** One decoded watch line, or why it is not one. */
const parseEvent = (line: string): { readonly type: string; readonly object: unknown } | string => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return "not JSON"
  }
  if (typeof value !== "object" || value === null) return "not an object"
  const { type, object } = value as { readonly type?: unknown; readonly object?: unknown }
  return typeof type === "string" && WATCH_EVENT_TYPES.has(type) ? { type, object } : "no watch event type"
}

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
    const healthyAfter = Duration.toMillis(options.healthyAfter ?? Duration.seconds(30))
    const forbiddenRetry = Duration.decode(options.forbiddenRetry ?? Duration.minutes(5))
    const backoff = yield* Schedule.driver(
      Backoff.exponential({
        initial: options.initialBackoff ?? Duration.seconds(1),
        max: options.maxBackoff ?? Duration.seconds(30),
      }),
    )
    const listSlot = options.listSlots ?? unboundedSlots
    let watchList = options.watchList ?? true
    /**
     * The last streaming initial list failed: the next list is a LIST. The watch cache behind a
     * streaming list is not there while the API server (re)initialises a type's storage (a fresh CRD,
     * a restart); a LIST is answered from etcd meanwhile.
     */
    let listInstead = false

    // The state of the machine. Plain variables: one fiber runs the machine, and `relist` only
    // appends a waiter and ends the current request.
    let phase: Phase = List
    /** namespace/name → UID of every object currently known to exist. */
    let known = new Map<string, string>()
    /** Callers of `relist` waiting for the next complete list. */
    let relistWaiters: Array<Deferred.Deferred<ListOutcome>> = []
    /** Ends the watch request in flight, if any (a relist was asked for). */
    let endWatch: (() => void) | undefined

    const idOf = (key: string) => {
      const slash = key.indexOf("/")
      return instanceId(target, key.slice(0, slash) || undefined, key.slice(slash + 1))
    }
    const observed = (change: Change.Change) => TypeWatchEvent.Observed({ change })
    const upsertOf = (meta: ObjectMetadata, out: Array<TypeWatchEvent>) => {
      const record = toInstanceRecord(target, meta)
      if (record !== undefined) out.push(observed(Change.upsert(record)))
    }

    /**
     * An object seen by a list in progress (LIST or streaming). One that was deleted and re-created
     * under the same name while we were not watching is deleted first; returns the deletes emitted.
     */
    const seenByList = (seen: Map<string, string>, key: string, uid: string, out: Array<TypeWatchEvent>) => {
      const previous = known.get(key)
      seen.set(key, uid)
      if (previous === undefined || previous === uid) return 0
      out.push(observed(Change.remove(idOf(key))))
      return 1
    }

    /** A list is complete: whatever was known and not seen is gone, and `seen` is what is known. */
    const listed = (
      seen: Map<string, string>,
      deletesSoFar: number,
      out: Array<TypeWatchEvent>,
    ): ListOutcome => {
      let deletes = deletesSoFar
      for (const key of known.keys()) {
        if (seen.has(key)) continue
        deletes++
        out.push(observed(Change.remove(idOf(key))))
      }
      known = seen
      const outcome = { objects: seen.size, deletes }
      out.push(TypeWatchEvent.Listed(outcome))
      return outcome
    }

    /** Reports the error, then waits as long as it deserves; a 410 makes the next step a list. */
    const failed = (emit: Emit, error: KubeError): Effect.Effect<void> => {
      if (isGone(error)) phase = List
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
      return Effect.zipRight(emit([TypeWatchEvent.Failed({ error })]), wait)
    }

    /** One complete list, page by page; on success the next step watches from its version. */
    const list = (emit: Emit): Effect.Effect<void> =>
      Effect.suspend(() => {
        // Those who asked before this list started are answered by it; later ones by the next.
        const waiting = relistWaiters
        relistWaiters = []
        const seen = new Map<string, string>()
        let deletes = 0
        const pages = Effect.gen(function* () {
          let resourceVersion = ""
          let continueToken: string | undefined
          do {
            const page = yield* client.get(path, {
              accept: MediaType.partialObjectMetadataList,
              query: { limit: pageSize, continue: continueToken },
              schema: ListPage,
            })
            resourceVersion = page.metadata.resourceVersion ?? resourceVersion
            continueToken = page.metadata.continue || undefined
            const events: Array<TypeWatchEvent> = []
            for (const item of page.items) {
              const meta = metadataOf(item)
              if (!meta?.name) continue
              deletes += seenByList(seen, keyOf(meta), meta.uid ?? "", events)
              upsertOf(meta, events)
            }
            if (events.length > 0) yield* emit(events)
          } while (continueToken !== undefined)
          return resourceVersion
        })
        return Effect.acquireUseRelease(
          listSlot.take,
          () => pages,
          (release) => release,
        ).pipe(
          Effect.matchEffect({
            // A failed list answers nobody: its waiters move on to the next attempt.
            onFailure: (error) => {
              relistWaiters = [...waiting, ...relistWaiters]
              return failed(emit, error)
            },
            onSuccess: (resourceVersion) => {
              const events: Array<TypeWatchEvent> = []
              const outcome = listed(seen, deletes, events)
              phase = { _tag: "Watch", resourceVersion }
              return emit(events).pipe(
                Effect.zipRight(Effect.forEach(waiting, (deferred) => Deferred.succeed(deferred, outcome))),
              )
            },
          }),
        )
      })

    /**
     * A streaming initial list in progress ("WatchList": the watch starts with the current objects
     * as ADDED events and marks their end with a bookmark): what the list so far has seen, and who
     * is waiting for it.
     */
    interface Initial {
      readonly seen: Map<string, string>
      readonly waiting: ReadonlyArray<Deferred.Deferred<ListOutcome>>
      deletes: number
    }

    /** Applies one watch line to `known`; returns the error that ends the watch, if any. */
    const apply = (
      line: string,
      out: Array<TypeWatchEvent>,
      initial: Initial | undefined,
    ): KubeError | undefined => {
      const event = parseEvent(line)
      if (typeof event === "string") {
        return new KubeDecodeError({
          method: "GET",
          path,
          message: `GET ${path}: not a watch event (${event}): ${excerpt(line, 200)}`,
        })
      }
      if (event.type === "ERROR") return KubeApiError.fromWatchEvent("GET", path, event.object)
      const meta = metadataOf(event.object)
      if (meta?.resourceVersion && phase._tag === "Watch") {
        phase = { _tag: "Watch", resourceVersion: meta.resourceVersion }
      }
      if (event.type === "BOOKMARK") {
        if (initial !== undefined && meta?.annotations?.[INITIAL_EVENTS_END] === "true") {
          listed(initial.seen, initial.deletes, out)
          phase = { _tag: "Watch", resourceVersion: meta.resourceVersion ?? "" }
        }
        return undefined
      }
      if (!meta?.name) return undefined // nothing to key it by; its version still counts
      const key = keyOf(meta)
      if (event.type === "DELETED") {
        known.delete(key)
        initial?.seen.delete(key)
        out.push(observed(Change.remove(idOf(key))))
        return undefined
      }
      const uid = meta.uid ?? ""
      if (initial !== undefined && phase._tag === "List") {
        initial.deletes += seenByList(initial.seen, key, uid, out)
      } else {
        known.set(key, uid)
      }
      upsertOf(meta, out)
      return undefined
    }

    const readError = (cause: Error | "idle"): "idle" | KubeError =>
      cause === "idle"
        ? cause
        : new KubeTransportError({
            method: "GET",
            path,
            reason: "ConnectionReset",
            message: `GET ${path}: the watch broke off: ${cause.message}`,
            cause,
          })

    /**
     * One WATCH request, read until it ends: from `resourceVersion`, or (`undefined`) as a streaming
     * initial list, which holds a list slot until its end-of-initial-events bookmark.
     */
    const watch = (emit: Emit, resourceVersion: string | undefined): Effect.Effect<void> => {
      const initial: Initial | undefined =
        resourceVersion === undefined ? { seen: new Map(), waiting: relistWaiters, deletes: 0 } : undefined
      if (initial !== undefined) relistWaiters = []
      const answered = () => initial === undefined || phase._tag === "Watch"
      return Effect.scoped(
        Effect.gen(function* () {
          const jitter = yield* Random.nextRange(1, 1.5)
          const openedAt = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          let releaseSlot: Effect.Effect<void> = Effect.void
          if (initial !== undefined) {
            releaseSlot = yield* listSlot.take
            yield* Effect.addFinalizer(() => releaseSlot)
          }
          const reader = yield* client.openLines(path, {
            accept: MediaType.partialObjectMetadata,
            query: {
              ...watchQuery({
                resourceVersion,
                allowWatchBookmarks: true,
                timeoutSeconds: Math.round(watchTimeout * jitter),
              }),
              ...(initial === undefined
                ? {}
                : { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" }),
            },
            idleTimeout,
          })
          let relisting = false
          endWatch = () => {
            relisting = true
            reader.abort()
          }
          let healthy = false
          let releasedSlot = initial === undefined
          for (;;) {
            const lines: ReadonlyArray<string> | undefined = yield* reader.next.pipe(
              Effect.catchAll(
                (cause): Effect.Effect<undefined, "idle" | KubeError> =>
                  relisting ? Effect.succeed(undefined) : Effect.fail(readError(cause)),
              ),
            )
            if (!healthy) {
              const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
              if (now - openedAt >= healthyAfter) {
                healthy = true
                yield* backoff.reset
              }
            }
            if (lines === undefined) {
              if (!answered() && !relisting) {
                // The server ended the watch without marking the end of the initial events: it
                // does not stream initial lists. This type lists from now on.
                watchList = false
              }
              if (relisting) phase = List
              return yield* emit([TypeWatchEvent.Restarted({ reason: "closed" })])
            }
            const events: Array<TypeWatchEvent> = []
            for (const line of lines) {
              const error = apply(line, events, answered() ? undefined : initial)
              if (error !== undefined) {
                if (events.length > 0) yield* emit(events)
                return yield* Effect.fail(error)
              }
            }
            if (events.length > 0) yield* emit(events)
            if (!releasedSlot && answered()) {
              releasedSlot = true
              yield* releaseSlot
              const outcome = events.find((event) => event._tag === "Listed")
              if (outcome?._tag === "Listed") {
                yield* Effect.forEach(initial!.waiting, (deferred) =>
                  Deferred.succeed(deferred, { objects: outcome.objects, deletes: outcome.deletes }),
                )
              }
            }
          }
        }),
      ).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            endWatch = undefined
            // An initial list that did not complete answers nobody: its waiters move on to the next.
            if (initial !== undefined && !answered()) relistWaiters = [...initial.waiting, ...relistWaiters]
          }),
        ),
        Effect.catchAll((error) => {
          if (error === "idle") return emit([TypeWatchEvent.Restarted({ reason: "idle" })])
          if (isGone(error)) {
            phase = List
            return emit([TypeWatchEvent.Restarted({ reason: "expired" })])
          }
          if (initial !== undefined && !answered()) {
            if (refusesWatchList(error)) {
              watchList = false
              return Effect.void
            }
            listInstead = true
          }
          return emit([TypeWatchEvent.Restarted({ reason: "error" })]).pipe(
            Effect.zipRight(failed(emit, error)),
          )
        }),
      )
    }

    const step = (emit: Emit): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (phase._tag === "List" || relistWaiters.length > 0) {
          phase = List
          if (watchList && !listInstead) return watch(emit, undefined)
          listInstead = false
          return list(emit)
        }
        return watch(emit, phase.resourceVersion)
      })

    const run = (emit: Emit): Effect.Effect<never> => Effect.forever(step(emit))

    return {
      target,
      run,
      events: Stream.asyncScoped<TypeWatchEvent>((push) =>
        Effect.forkScoped(
          run((events) => Effect.promise(() => push.chunk(Chunk.unsafeFromArray([...events])))),
        ),
      ),
      knownIds: Effect.sync(() => [...known.keys()].map(idOf)),
      relist: Effect.gen(function* () {
        const deferred = yield* Deferred.make<ListOutcome>()
        relistWaiters.push(deferred)
        endWatch?.()
        return yield* Deferred.await(deferred)
      }),
    } satisfies TypeWatch
  })
