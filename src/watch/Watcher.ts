/**
 * The watcher of one resource type as kube-rs has it: an explicit state, the request that state
 * asks for, and a pure transition from (state, what that request gave) to (raw events, next state).
 * `WatchStream` performs the requests and unfolds this into a Stream; `Store` turns the raw events
 * into changes. Nothing here does I/O or keeps time, so every path is unit tested on plain values.
 *
 * - a list is either a streaming initial list ("WatchList": a WATCH with `sendInitialEvents=true`
 *   whose initial objects end with the `k8s.io/initial-events-end` bookmark) or a paginated LIST;
 *   a server that refuses the former (400/422) or ignores it (ends the watch before the bookmark)
 *   is listed with LIST for good, and any other failure of it makes the next list one LIST;
 * - a WATCH that ends cleanly (server timeout, idle) resumes from the last resourceVersion seen;
 * - `410 Gone` (as HTTP status or ERROR event) on a watch means the version is too old: list again;
 * - failures are `Error` events: the stream never fails; waiting after them is `Backoff`'s job.
 */
import { Data } from "effect"
import { isGone, KubeApiError, KubeDecodeError, type KubeError } from "../kube/KubeError.js"
import { type Metadata, WatchEvent } from "./WatchEvent.js"
import { decodeLine } from "./WatchLine.js"

// Their own modules now; still reachable as `Watcher.*` (the library's namespace).

export type Phase = Data.TaggedEnum<{
  /** Nothing listed yet, or the last list is void: a list is next. */
  Empty: {}
  /** A paginated LIST in progress: the next page is next. */
  Listing: { readonly continueToken: string; readonly resourceVersion: string }
  /** A streaming initial list is open and its initial objects have not all come. */
  StreamingList: {}
  /** Listed; watching from `resourceVersion` (`open`: a WATCH request is being read). */
  Watching: { readonly resourceVersion: string; readonly open: boolean }
}>
export const Phase = Data.taggedEnum<Phase>()

export interface State {
  readonly phase: Phase
  /** Lists may be streaming; false for good once the server refused or ignored a streaming list. */
  readonly streaming: boolean
  /**
   * The last streaming list failed: the next list is one LIST. The watch cache behind a streaming
   * list is not there while the API server (re)initialises a type's storage (a fresh CRD, a
   * restart); a LIST is answered from etcd meanwhile.
   */
  readonly listInstead: boolean
}

export const initial = (streaming: boolean): State => ({
  phase: Phase.Empty(),
  streaming,
  listInstead: false,
})

/** The request a state asks for. */
export type Request = Data.TaggedEnum<{
  /** A LIST page (`continueToken` undefined: the first). */
  List: { readonly continueToken: string | undefined }
  /** A WATCH from `resourceVersion`, or (undefined) a streaming initial list. */
  Watch: { readonly resourceVersion: string | undefined }
  /** The next read of the open WATCH. */
  Read: {}
}>
export const Request = Data.taggedEnum<Request>()

export const request = (state: State): Request => {
  const phase = state.phase
  switch (phase._tag) {
    case "Empty":
      return state.streaming && !state.listInstead
        ? Request.Watch({ resourceVersion: undefined })
        : Request.List({ continueToken: undefined })
    case "Listing":
      return Request.List({ continueToken: phase.continueToken })
    case "StreamingList":
      return Request.Read()
    case "Watching":
      return phase.open ? Request.Read() : Request.Watch({ resourceVersion: phase.resourceVersion })
  }
}

/** Whether the state is in the middle of a list (the interpreter holds a list slot meanwhile). */
export const isListing = (state: State): boolean =>
  state.phase._tag === "Listing" || state.phase._tag === "StreamingList"

/** Whether a WATCH request is open in this state. */
export const isOpen = (state: State): boolean =>
  state.phase._tag === "StreamingList" || (state.phase._tag === "Watching" && state.phase.open)

/** What performing a state's request gave. */
export type Outcome = Data.TaggedEnum<{
  /** A LIST page. */
  Page: {
    readonly items: ReadonlyArray<unknown>
    readonly resourceVersion: string | undefined
    readonly continueToken: string | undefined
  }
  /** The WATCH request was answered 2xx. */
  Opened: {}
  /** Lines read from the open WATCH. */
  Lines: { readonly lines: ReadonlyArray<string> }
  /** The server ended the WATCH. */
  Closed: {}
  /** The WATCH delivered nothing, not even a bookmark, for the idle timeout. */
  Idle: {}
  /** The request, or the read, failed. */
  Failed: { readonly error: KubeError }
  /** A fresh list was asked for (an open WATCH has been aborted). */
  Relist: {}
}>
export const Outcome = Data.taggedEnum<Outcome>()

export interface Step {
  readonly events: ReadonlyArray<WatchEvent>
  readonly state: State
}

/** The bookmark annotation that ends the initial events of a streaming list. */
export const INITIAL_EVENTS_END = "k8s.io/initial-events-end"

/** The server said no to a streaming initial list (feature off, or too old to know the parameters). */
const refusesStreaming = (error: KubeError): boolean =>
  error._tag === "KubeApiError" && (error.code === 400 || error.code === 422)

const metadataOf = (object: unknown): Metadata | undefined =>
  typeof object === "object" && object !== null
    ? (object as { readonly metadata?: Metadata }).metadata
    : undefined

const Empty = Phase.Empty()
const step = (events: ReadonlyArray<WatchEvent>, state: State): Step => ({ events, state })

/** A watch request failed, or broke off: what that means depends on whether it was listing. */
const watchFailed = (state: State, error: KubeError, events: Array<WatchEvent> = []): Step => {
  if (isGone(error)) {
    events.push(WatchEvent.Restarted({ reason: "expired" }))
    return step(events, { ...state, phase: Empty })
  }
  const listing = state.phase._tag !== "Watching"
  if (listing && refusesStreaming(error)) return step(events, { ...state, phase: Empty, streaming: false })
  events.push(WatchEvent.Restarted({ reason: "error" }), WatchEvent.Error({ error, retryAtOnce: listing }))
  return listing
    ? step(events, { ...state, phase: Empty, listInstead: true })
    : step(events, {
        ...state,
        phase: Phase.Watching({ resourceVersion: resourceVersionOf(state), open: false }),
      })
}

const resourceVersionOf = (state: State): string =>
  state.phase._tag === "Watching" ? state.phase.resourceVersion : ""

/** Lines of an open WATCH, in order; an ERROR event or an undecodable line ends the request. */
const readLines = (path: string, state: State, lines: ReadonlyArray<string>): Step => {
  const events: Array<WatchEvent> = []
  let phase = state.phase
  let page: Array<Metadata> | undefined
  const flushPage = () => {
    if (page !== undefined) events.push(WatchEvent.InitPage({ objects: page }))
    page = undefined
  }
  for (const line of lines) {
    const event = decodeLine(path, line)
    if (event instanceof KubeDecodeError) {
      flushPage()
      return watchFailed({ ...state, phase }, event, events)
    }
    if (event.type === "ERROR") {
      flushPage()
      return watchFailed({ ...state, phase }, KubeApiError.fromWatchEvent("GET", path, event.object), events)
    }
    const meta = metadataOf(event.object)
    if (phase._tag === "Watching" && meta?.resourceVersion) {
      phase = Phase.Watching({ resourceVersion: meta.resourceVersion, open: true })
    }
    if (event.type === "BOOKMARK") {
      if (phase._tag === "StreamingList" && meta?.annotations?.[INITIAL_EVENTS_END] === "true") {
        flushPage()
        const resourceVersion = meta.resourceVersion ?? ""
        events.push(WatchEvent.InitDone({ resourceVersion }))
        phase = Phase.Watching({ resourceVersion, open: true })
      }
      continue
    }
    if (!meta?.name) continue // nothing to key it by; its version still counts
    if (event.type === "DELETED") {
      flushPage()
      events.push(WatchEvent.Delete({ object: meta }))
    } else if (phase._tag === "StreamingList") {
      if (page === undefined) page = []
      page.push(meta)
    } else {
      events.push(WatchEvent.Apply({ object: meta }))
    }
  }
  flushPage()
  return step(events, phase === state.phase ? state : { ...state, phase })
}

/**
 * The watcher's transition: the raw events a request's outcome means and the next state. `path`
 * only names the collection in errors.
 */
export const transition = (path: string, state: State, outcome: Outcome): Step => {
  const phase = state.phase
  switch (outcome._tag) {
    case "Relist":
      return step(isOpen(state) ? [WatchEvent.Restarted({ reason: "closed" })] : [], {
        ...state,
        phase: Empty,
      })
    case "Page": {
      if (phase._tag !== "Empty" && phase._tag !== "Listing") return step([], state)
      const resourceVersion =
        outcome.resourceVersion ?? (phase._tag === "Listing" ? phase.resourceVersion : "")
      const objects: Array<Metadata> = []
      for (const item of outcome.items) {
        const meta = metadataOf(item)
        if (meta?.name) objects.push(meta)
      }
      const events: Array<WatchEvent> = phase._tag === "Empty" ? [WatchEvent.Init()] : []
      events.push(WatchEvent.InitPage({ objects }))
      if (outcome.continueToken) {
        return step(events, {
          ...state,
          phase: Phase.Listing({ continueToken: outcome.continueToken, resourceVersion }),
          listInstead: false,
        })
      }
      events.push(WatchEvent.InitDone({ resourceVersion }))
      return step(events, {
        ...state,
        phase: Phase.Watching({ resourceVersion, open: false }),
        listInstead: false,
      })
    }
    case "Opened":
      switch (phase._tag) {
        case "Empty":
          return step([WatchEvent.Init()], { ...state, phase: Phase.StreamingList() })
        case "Watching":
          return phase.open ? step([], state) : step([], { ...state, phase: { ...phase, open: true } })
        default:
          return step([], state)
      }
    case "Lines":
      return isOpen(state) ? readLines(path, state, outcome.lines) : step([], state)
    case "Closed":
      switch (phase._tag) {
        case "StreamingList":
          // The server ended the watch without marking the end of the initial events: it does not
          // stream initial lists. This type lists from now on.
          return step([WatchEvent.Restarted({ reason: "closed" })], {
            ...state,
            phase: Empty,
            streaming: false,
          })
        case "Watching":
          return step([WatchEvent.Restarted({ reason: "closed" })], {
            ...state,
            phase: Phase.Watching({ resourceVersion: phase.resourceVersion, open: false }),
          })
        default:
          return step([], state)
      }
    case "Idle":
      switch (phase._tag) {
        case "StreamingList":
          return step([WatchEvent.Restarted({ reason: "idle" })], { ...state, phase: Empty })
        case "Watching":
          return step([WatchEvent.Restarted({ reason: "idle" })], {
            ...state,
            phase: Phase.Watching({ resourceVersion: phase.resourceVersion, open: false }),
          })
        default:
          return step([], state)
      }
    case "Failed": {
      const error = outcome.error
      if (request(state)._tag === "List") {
        // A failed LIST voids the list: the next one starts over (a streaming one if allowed).
        return step([WatchEvent.Error({ error })], { ...state, phase: Empty, listInstead: false })
      }
      return watchFailed(state, error)
    }
  }
}
