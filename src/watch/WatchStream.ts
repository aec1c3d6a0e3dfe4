/**
 * The interpreter of `Watcher`: performs the request a state asks for through `KubeClient` and
 * unfolds the transition into a Stream of raw events, one chunk per request (one network read),
 * paced after errors by `Backoff` when `pacing` is given. The stream never fails and never ends;
 * interrupt its consumer to stop it.
 *
 * Cost: at a thousand types this runs a thousand times, mostly idle. A running watch is one
 * pending read of its response body (`KubeClient.openLines`) and the little state below.
 */
import { Chunk, Deferred, Duration, Effect, Exit, Option, Random, Scope, Stream } from "effect"
import { KubeClient } from "../kube/KubeClient.js"
import { ListPage, MediaType, watchQuery } from "../kube/KubeWatch.js"
import type * as LineReader from "../kube/LineReader.js"
import { type BackoffOptions, paced, unfoldPaced } from "./Backoff.js"
import { type ListSlots, unbounded as unboundedSlots } from "./ListSlots.js"
import type { WatchEvent } from "./WatchEvent.js"
import * as Watcher from "./Watcher.js"
import { readError } from "./WatchLine.js"
import { collectionPath, type WatchTarget } from "./WatchTarget.js"

export interface WatchStreamOptions {
  /** LIST page size. */
  readonly pageSize?: number
  /** Server-side WATCH timeout; jittered by up to +50% so that watches do not renew in lockstep. */
  readonly watchTimeout?: Duration.DurationInput
  /** A WATCH that delivers nothing (not even a bookmark) for this long is taken for dead. */
  readonly idleTimeout?: Duration.DurationInput
  /** Shared by many watches to bound the initial lists in flight (LIST, or the initial events of a watch). */
  readonly listSlots?: ListSlots
  /**
   * Start with the streaming initial list ("WatchList": `sendInitialEvents=true`) rather than LIST
   * then WATCH. A server that refuses or ignores it is listed the classic way. Default true.
   */
  readonly watchList?: boolean
  /** A label selector the API server applies to lists and watches (`LABEL_SELECTOR`). */
  readonly labelSelector?: string
  /** Watch a namespaced type in this namespace only (`WATCH_NAMESPACES` naming one). */
  readonly namespace?: string
  /** How long the request after a failed one waits (see `TypeWatch`); none: at once. */
  readonly pacing?: BackoffOptions<WatchEvent>
}

export interface ListOutcome {
  readonly objects: number
  /** Deletes synthesised because objects vanished (or were re-created) since the last list. */
  readonly deletes: number
}

/**
 * Relisting on demand: `relist` ends the current request, the watcher lists afresh, and whoever
 * consumes the events (and so knows the outcome) calls `listed` at its `InitDone`. A caller is
 * answered by the first list that started after it asked; concurrent callers share it.
 */
export interface Relists {
  readonly relist: Effect.Effect<ListOutcome>
  readonly listed: (outcome: ListOutcome) => Effect.Effect<void>
}

interface RelistState {
  /** Relists asked for so far, and how many of them the interpreter has acted on. */
  asked: number
  handled: number
  /** Of the asks, how many the list in progress (or the last one) started after. */
  coveredByList: number
  waiters: Array<{ readonly ticket: number; readonly deferred: Deferred.Deferred<ListOutcome> }>
  /** Ends the WATCH being read, if any. */
  abort: (() => void) | undefined
}

export interface WatchStream {
  readonly events: Stream.Stream<WatchEvent>
  /**
   * `Stream.runForEachChunk(events, f)` without the channel: `f` gets each chunk in turn until
   * the unfold ends (never, for a watch); the open request and the list slot are released after.
   */
  readonly forEachChunk: (f: (chunk: Chunk.Chunk<WatchEvent>) => Effect.Effect<void>) => Effect.Effect<void>
  readonly relists: Relists
}

export const make = (
  target: WatchTarget,
  options: WatchStreamOptions = {},
): Effect.Effect<WatchStream, never, KubeClient> =>
  Effect.map(KubeClient, (client) => {
    const path = collectionPath(target, options.namespace)
    const labelSelector = options.labelSelector
    const pageSize = options.pageSize ?? 500
    const watchTimeout = Duration.toSeconds(options.watchTimeout ?? Duration.minutes(5))
    const idleTimeout = Duration.decode(options.idleTimeout ?? Duration.seconds(watchTimeout * 1.5 + 30))
    const listSlots = options.listSlots ?? unboundedSlots
    const relisting: RelistState = { asked: 0, handled: 0, coveredByList: 0, waiters: [], abort: undefined }

    // What the interpreter holds beside the pure state: the open request and the list slot.
    let reader: LineReader.LineReader | undefined
    let requestScope: Scope.CloseableScope | undefined
    let releaseSlot: Effect.Effect<void> | undefined
    let relistedByAbort = false

    const closeRequest = Effect.suspend(() => {
      const scope = requestScope
      reader = undefined
      requestScope = undefined
      relisting.abort = undefined
      relistedByAbort = false
      return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
    })
    const freeSlot = Effect.suspend(() => {
      const release = releaseSlot
      releaseSlot = undefined
      return release ?? Effect.void
    })
    const takeSlot = Effect.suspend(() =>
      releaseSlot === undefined
        ? Effect.map(listSlots.take, (release) => {
            releaseSlot = release
          })
        : Effect.void,
    )

    const list = (continueToken: string | undefined) =>
      Effect.zipRight(
        takeSlot,
        client.get(path, {
          accept: MediaType.partialObjectMetadataList,
          query: { limit: pageSize, continue: continueToken, labelSelector },
          schema: ListPage,
        }),
      ).pipe(
        Effect.match({
          onFailure: (error) => Watcher.Outcome.Failed({ error }),
          onSuccess: (page) =>
            Watcher.Outcome.Page({
              items: page.items,
              resourceVersion: page.metadata.resourceVersion,
              continueToken: page.metadata.continue || undefined,
            }),
        }),
      )

    const open = (resourceVersion: string | undefined) =>
      Effect.gen(function* () {
        if (resourceVersion === undefined) yield* takeSlot
        const jitter = yield* Random.nextRange(1, 1.5)
        const scope = yield* Scope.make()
        requestScope = scope
        const opened = yield* client
          .openLines(path, {
            accept: MediaType.partialObjectMetadata,
            query: {
              ...watchQuery({
                resourceVersion,
                allowWatchBookmarks: true,
                timeoutSeconds: Math.round(watchTimeout * jitter),
                labelSelector,
              }),
              ...(resourceVersion === undefined
                ? { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" }
                : {}),
            },
            idleTimeout,
          })
          .pipe(Scope.extend(scope), Effect.either)
        if (opened._tag === "Left") {
          yield* closeRequest
          return Watcher.Outcome.Failed({ error: opened.left })
        }
        const openedReader = opened.right
        reader = openedReader
        relisting.abort = () => {
          relistedByAbort = true
          openedReader.abort()
        }
        return Watcher.Outcome.Opened()
      })

    const read = Effect.suspend(() => {
      if (reader === undefined) return Effect.succeed(Watcher.Outcome.Closed())
      return reader.next.pipe(
        Effect.match({
          onSuccess: (lines) =>
            lines === undefined ? Watcher.Outcome.Closed() : Watcher.Outcome.Lines({ lines }),
          onFailure: (cause) => {
            if (relistedByAbort) return Watcher.Outcome.Relist()
            return cause === "idle"
              ? Watcher.Outcome.Idle()
              : Watcher.Outcome.Failed({ error: readError(path, cause) })
          },
        }),
      )
    })

    const perform = (state: Watcher.State): Effect.Effect<Watcher.Outcome> => {
      if (relisting.asked > relisting.handled) {
        relisting.handled = relisting.asked
        return Effect.succeed(Watcher.Outcome.Relist())
      }
      const request = Watcher.request(state)
      switch (request._tag) {
        case "List":
          return list(request.continueToken)
        case "Watch":
          return open(request.resourceVersion)
        case "Read":
          return read
      }
    }

    /**
     * One step of the stream: requests until the outcome means events (as kube-rs's watcher
     * trampolines its step). A step with nothing to say (a WATCH reopened, a bookmark) would cost
     * a round through the stream for nothing, and at a thousand types those rounds add up.
     */
    const next = (
      state: Watcher.State,
    ): Effect.Effect<Option.Option<readonly [Chunk.Chunk<WatchEvent>, Watcher.State]>> =>
      Effect.flatMap(perform(state), (outcome) => {
        if (outcome._tag === "Relist") relisting.handled = relisting.asked
        const result = Watcher.transition(path, state, outcome)
        // A list starting answers everyone who asked for one before.
        if (state.phase._tag === "Empty" && result.state.phase._tag !== "Empty") {
          relisting.coveredByList = relisting.handled
        }
        const then =
          result.events.length === 0
            ? Effect.suspend(() => next(result.state))
            : Effect.succeed(Option.some([Chunk.unsafeFromArray(result.events), result.state] as const))
        // Cleanup only where there is something to clean up: this runs for every network read.
        const closing = !Watcher.isOpen(result.state) && requestScope !== undefined
        const freeing = !Watcher.isListing(result.state) && releaseSlot !== undefined
        if (!closing && !freeing) return then
        const cleanup =
          closing && freeing ? Effect.zipRight(closeRequest, freeSlot) : closing ? closeRequest : freeSlot
        return Effect.zipRight(cleanup, then)
      })

    const initial = Watcher.initial(options.watchList ?? true)
    const pacing = options.pacing
    /** The step of one run (pacing keeps per-run state). */
    const stepOfRun = () => (pacing === undefined ? next : paced(next, pacing))
    const release = Effect.zipRight(closeRequest, freeSlot)
    const events = (
      pacing === undefined ? Stream.unfoldChunkEffect(initial, next) : unfoldPaced(initial, next, pacing)
    ).pipe(Stream.ensuring(release))
    // The same unfold, run without a channel: what `Stream.runForEachChunk(events, f)` does, for
    // the feed, which runs a thousand of these (a channel executor and a scope per type cost a
    // start and a stop). The release is an `ensuring`, which needs no scope.
    const forEachChunk = (f: (chunk: Chunk.Chunk<WatchEvent>) => Effect.Effect<void>) =>
      Effect.suspend(() => {
        const step = stepOfRun()
        const loop = (state: Watcher.State): Effect.Effect<void> =>
          Effect.flatMap(step(state), (result) =>
            Option.isNone(result) ? Effect.void : Effect.zipRight(f(result.value[0]), loop(result.value[1])),
          )
        return Effect.ensuring(loop(initial), release)
      })

    const relists: Relists = {
      relist: Effect.flatMap(Deferred.make<ListOutcome>(), (deferred) => {
        relisting.asked++
        relisting.waiters.push({ ticket: relisting.asked, deferred })
        relisting.abort?.()
        return Deferred.await(deferred)
      }),
      listed: (outcome) =>
        Effect.suspend(() => {
          if (relisting.waiters.length === 0) return Effect.void
          const answered = relisting.waiters.filter((w) => w.ticket <= relisting.coveredByList)
          if (answered.length === 0) return Effect.void
          relisting.waiters = relisting.waiters.filter((w) => w.ticket > relisting.coveredByList)
          return Effect.forEach(answered, (w) => Deferred.succeed(w.deferred, outcome), { discard: true })
        }),
    }
    return { events, forEachChunk, relists }
  })
