/**
 * The watcher's pure transition, state by state and outcome by outcome, on plain values: what each
 * state asks for, what each answer means (raw events) and where it goes next.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import { KubeApiError, KubeTransportError } from "../../../src/kube/KubeError.js"
import { backoff } from "../../../src/watch/Backoff.js"
import { pauseOf } from "../../../src/watch/TypeWatch.js"
import type { WatchEvent } from "../../../src/watch/WatchEvent.js"
import {
  initial,
  isListing,
  isOpen,
  Outcome,
  Phase,
  Request,
  request,
  type State,
  transition,
} from "../../../src/watch/Watcher.js"

const path = "/api/v1/configmaps"
const apiError = (code: number) =>
  new KubeApiError({
    method: "GET",
    path,
    code,
    reason: "x",
    message: `code ${code}`,
    retryAfterSeconds: Option.none(),
    status: Option.none(),
    body: "",
  })
const transport = new KubeTransportError({ method: "GET", path, reason: "ConnectionReset", message: "reset" })

const empty: State = initial(true)
const listEmpty: State = { ...initial(false) }
const listing: State = {
  phase: Phase.Listing({ continueToken: "c1", resourceVersion: "5" }),
  streaming: false,
  listInstead: false,
}
const streamingList: State = { phase: Phase.StreamingList(), streaming: true, listInstead: false }
const watchingClosed: State = {
  phase: Phase.Watching({ resourceVersion: "7", open: false }),
  streaming: true,
  listInstead: false,
}
const watchingOpen: State = {
  phase: Phase.Watching({ resourceVersion: "7", open: true }),
  streaming: true,
  listInstead: false,
}

const meta = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  namespace: "ns",
  uid: `u-${name}`,
  ...extra,
})
const line = (type: string, object: unknown) => JSON.stringify({ type, object })
const tags = (events: ReadonlyArray<WatchEvent>) => events.map((e) => e._tag)

describe("request: what each state asks for", () => {
  it("Empty lists by streaming when allowed, by LIST otherwise or after a failed streaming list", () => {
    expect(request(empty)).toEqual(Request.Watch({ resourceVersion: undefined }))
    expect(request(listEmpty)).toEqual(Request.List({ continueToken: undefined }))
    expect(request({ ...empty, listInstead: true })).toEqual(Request.List({ continueToken: undefined }))
  })
  it("Listing asks for its next page, an open watch for a read, a closed one to watch from its version", () => {
    expect(request(listing)).toEqual(Request.List({ continueToken: "c1" }))
    expect(request(streamingList)).toEqual(Request.Read())
    expect(request(watchingOpen)).toEqual(Request.Read())
    expect(request(watchingClosed)).toEqual(Request.Watch({ resourceVersion: "7" }))
  })
  it("a list slot is held while listing; a request is open while streaming or watching open", () => {
    expect([empty, listing, streamingList, watchingClosed, watchingOpen].map(isListing)).toEqual([
      false,
      true,
      true,
      false,
      false,
    ])
    expect([empty, listing, streamingList, watchingClosed, watchingOpen].map(isOpen)).toEqual([
      false,
      false,
      true,
      false,
      true,
    ])
  })
})

describe("LIST", () => {
  const page = (names: ReadonlyArray<string>, resourceVersion: string | undefined, continueToken?: string) =>
    Outcome.Page({ items: names.map((n) => ({ metadata: meta(n) })), resourceVersion, continueToken })

  it("a single page: Init, the page, InitDone, then watch from its version", () => {
    const step = transition(path, listEmpty, page(["a", "b"], "9"))
    expect(tags(step.events)).toEqual(["Init", "InitPage", "InitDone"])
    expect(step.events[1]).toMatchObject({ objects: [{ name: "a" }, { name: "b" }] })
    expect(step.events[2]).toMatchObject({ resourceVersion: "9" })
    expect(step.state.phase).toEqual(Phase.Watching({ resourceVersion: "9", open: false }))
  })
  it("pages: continue tokens carried, the version of the last page that has one kept, Init only once", () => {
    const first = transition(path, listEmpty, page(["a"], "5", "c1"))
    expect(tags(first.events)).toEqual(["Init", "InitPage"])
    expect(first.state.phase).toEqual(Phase.Listing({ continueToken: "c1", resourceVersion: "5" }))
    const last = transition(path, first.state, page(["b"], undefined))
    expect(tags(last.events)).toEqual(["InitPage", "InitDone"])
    expect(last.events[1]).toMatchObject({ resourceVersion: "5" })
  })
  it("items without a name are skipped", () => {
    const step = transition(
      path,
      listEmpty,
      Outcome.Page({ items: [{ metadata: {} }, null, {}], resourceVersion: "1", continueToken: undefined }),
    )
    expect(step.events[1]).toMatchObject({ objects: [] })
  })
  it("a LIST that succeeds after a failed streaming list clears listInstead", () => {
    const step = transition(path, { ...empty, listInstead: true }, page([], "3"))
    expect(step.state).toMatchObject({ listInstead: false, streaming: true })
  })
  it("a failed LIST (any code, 410 and 403 included) is an Error and voids the list", () => {
    for (const error of [apiError(500), apiError(410), apiError(403), transport]) {
      for (const state of [listEmpty, listing]) {
        const step = transition(path, state, Outcome.Failed({ error }))
        expect(step.events).toEqual([{ _tag: "Error", error }])
        expect(step.state.phase).toEqual(Phase.Empty())
      }
    }
  })
})

describe("streaming initial list", () => {
  const endBookmark = (rv: string) =>
    line("BOOKMARK", {
      metadata: { resourceVersion: rv, annotations: { "k8s.io/initial-events-end": "true" } },
    })

  it("opened: Init; objects become one InitPage per read; the end bookmark is InitDone and watching goes on", () => {
    const opened = transition(path, empty, Outcome.Opened())
    expect(tags(opened.events)).toEqual(["Init"])
    expect(opened.state.phase).toEqual(Phase.StreamingList())
    const read = transition(
      path,
      opened.state,
      Outcome.Lines({
        lines: [
          line("ADDED", { metadata: meta("a", { resourceVersion: "3" }) }),
          line("ADDED", { metadata: meta("b") }),
          line("BOOKMARK", { metadata: { resourceVersion: "4" } }),
          endBookmark("8"),
          line("MODIFIED", { metadata: meta("a", { resourceVersion: "9" }) }),
        ],
      }),
    )
    expect(tags(read.events)).toEqual(["InitPage", "InitDone", "Apply"])
    expect(read.events[0]).toMatchObject({ objects: [{ name: "a" }, { name: "b" }] })
    expect(read.events[1]).toMatchObject({ resourceVersion: "8" })
    expect(read.state.phase).toEqual(Phase.Watching({ resourceVersion: "9", open: true }))
  })
  it("a DELETED during the initial events is a Delete, between pages", () => {
    const step = transition(
      path,
      streamingList,
      Outcome.Lines({
        lines: [
          line("ADDED", { metadata: meta("a") }),
          line("DELETED", { metadata: meta("b") }),
          line("ADDED", { metadata: meta("c") }),
        ],
      }),
    )
    expect(tags(step.events)).toEqual(["InitPage", "Delete", "InitPage"])
  })
  it("refused (400, 422): LIST for good, silently", () => {
    for (const code of [400, 422]) {
      const step = transition(path, empty, Outcome.Failed({ error: apiError(code) }))
      expect(step.events).toEqual([])
      expect(step.state).toEqual({ phase: Phase.Empty(), streaming: false, listInstead: false })
      expect(request(step.state)._tag).toBe("List")
    }
  })
  it("410 on open or as an ERROR event: list again, no backoff", () => {
    const open = transition(path, empty, Outcome.Failed({ error: apiError(410) }))
    expect(open.events).toEqual([{ _tag: "Restarted", reason: "expired" }])
    expect(open.state).toEqual(empty)
    const event = transition(
      path,
      streamingList,
      Outcome.Lines({ lines: [line("ERROR", { kind: "Status", code: 410, reason: "Expired" })] }),
    )
    expect(event.events).toEqual([{ _tag: "Restarted", reason: "expired" }])
    expect(event.state.phase).toEqual(Phase.Empty())
  })
  it("any other failure (open, read, ERROR event, bad line): Restarted, Error, and one LIST next", () => {
    const outcomes = [
      Outcome.Failed({ error: apiError(500) }),
      Outcome.Failed({ error: apiError(403) }),
      Outcome.Failed({ error: transport }),
    ]
    for (const outcome of outcomes) {
      const step = transition(path, empty, outcome)
      expect(tags(step.events)).toEqual(["Restarted", "Error"])
      // The LIST that follows is a different request: it goes out without a backoff.
      expect(step.events[1]).toMatchObject({ retryAtOnce: true })
      expect(pauseOf(Duration.minutes(5))(step.events[1]!)).toBeUndefined()
      expect(step.state).toEqual({ phase: Phase.Empty(), streaming: true, listInstead: true })
    }
    const read = transition(path, streamingList, Outcome.Failed({ error: transport }))
    expect(read.state).toMatchObject({ listInstead: true, streaming: true })
    const bad = transition(
      path,
      streamingList,
      Outcome.Lines({ lines: [line("ADDED", { metadata: meta("a") }), "{nope"] }),
    )
    expect(tags(bad.events)).toEqual(["InitPage", "Restarted", "Error"])
    expect(bad.events[2]).toMatchObject({ error: { _tag: "KubeDecodeError" } })
    expect(bad.state).toMatchObject({ phase: Phase.Empty(), listInstead: true })
  })
  it("ended before the end bookmark: the server ignores streaming lists, LIST for good", () => {
    const step = transition(path, streamingList, Outcome.Closed())
    expect(step.events).toEqual([{ _tag: "Restarted", reason: "closed" }])
    expect(step.state).toEqual({ phase: Phase.Empty(), streaming: false, listInstead: false })
  })
  it("idle: list again, streaming still", () => {
    const step = transition(path, streamingList, Outcome.Idle())
    expect(step.events).toEqual([{ _tag: "Restarted", reason: "idle" }])
    expect(step.state).toEqual({ ...streamingList, phase: Phase.Empty() })
  })
})

describe("watching", () => {
  it("opened: reads; nothing emitted", () => {
    const step = transition(path, watchingClosed, Outcome.Opened())
    expect(step).toEqual({ events: [], state: watchingOpen })
  })
  it("ADDED and MODIFIED are Apply, DELETED Delete, bookmarks move the version, nameless objects only the version", () => {
    const step = transition(
      path,
      watchingOpen,
      Outcome.Lines({
        lines: [
          line("ADDED", { metadata: meta("a", { resourceVersion: "8" }) }),
          line("MODIFIED", { metadata: meta("a", { resourceVersion: "9" }) }),
          line("DELETED", { metadata: meta("a", { resourceVersion: "10" }) }),
          line("ADDED", { metadata: { resourceVersion: "11" } }),
          line("BOOKMARK", { metadata: { resourceVersion: "12" } }),
        ],
      }),
    )
    expect(tags(step.events)).toEqual(["Apply", "Apply", "Delete"])
    expect(step.state.phase).toEqual(Phase.Watching({ resourceVersion: "12", open: true }))
  })
  it("ended by the server or idle: watch again from the last version", () => {
    for (const [outcome, reason] of [
      [Outcome.Closed(), "closed"],
      [Outcome.Idle(), "idle"],
    ] as const) {
      const step = transition(path, watchingOpen, outcome)
      expect(step.events).toEqual([{ _tag: "Restarted", reason }])
      expect(step.state).toEqual(watchingClosed)
    }
  })
  it("a failed watch backs off before the same request is made again", () => {
    const step = transition(path, watchingClosed, Outcome.Failed({ error: apiError(500) }))
    expect(tags(step.events)).toEqual(["Restarted", "Error"])
    expect(step.events[1]).toMatchObject({ retryAtOnce: false })
    expect(pauseOf(Duration.minutes(5))(step.events[1]!)).toEqual(backoff())
  })
  it("410 (status or ERROR event): list again", () => {
    const open = transition(path, watchingClosed, Outcome.Failed({ error: apiError(410) }))
    expect(open.events).toEqual([{ _tag: "Restarted", reason: "expired" }])
    expect(open.state.phase).toEqual(Phase.Empty())
    const event = transition(
      path,
      watchingOpen,
      Outcome.Lines({
        lines: [
          line("ADDED", { metadata: meta("a", { resourceVersion: "8" }) }),
          line("ERROR", { kind: "Status", code: 410 }),
        ],
      }),
    )
    expect(tags(event.events)).toEqual(["Apply", "Restarted"])
    expect(event.state.phase).toEqual(Phase.Empty())
  })
  it("other failures (open, read, ERROR event, 400 included): Restarted, Error, watch again from the version reached", () => {
    for (const state of [watchingClosed, watchingOpen]) {
      for (const error of [apiError(500), apiError(400), apiError(403), transport]) {
        const step = transition(path, state, Outcome.Failed({ error }))
        expect(tags(step.events)).toEqual(["Restarted", "Error"])
        expect(step.state).toEqual(watchingClosed)
      }
    }
    const event = transition(
      path,
      watchingOpen,
      Outcome.Lines({
        lines: [
          line("BOOKMARK", { metadata: { resourceVersion: "9" } }),
          line("ERROR", { kind: "Status", code: 500 }),
        ],
      }),
    )
    expect(tags(event.events)).toEqual(["Restarted", "Error"])
    expect(event.state.phase).toEqual(Phase.Watching({ resourceVersion: "9", open: false }))
  })
})

describe("relist on demand and impossible outcomes", () => {
  it("Relist: list again from any state; an open request ends as closed", () => {
    for (const state of [empty, listing, streamingList, watchingClosed, watchingOpen]) {
      const step = transition(path, state, Outcome.Relist())
      expect(step.events).toEqual(isOpen(state) ? [{ _tag: "Restarted", reason: "closed" }] : [])
      expect(step.state).toEqual({ ...state, phase: Phase.Empty() })
    }
  })
  it("an outcome the state did not ask for changes nothing", () => {
    const cases: ReadonlyArray<readonly [State, Outcome]> = [
      [watchingOpen, Outcome.Page({ items: [], resourceVersion: "1", continueToken: undefined })],
      [streamingList, Outcome.Page({ items: [], resourceVersion: "1", continueToken: undefined })],
      [listing, Outcome.Opened()],
      [streamingList, Outcome.Opened()],
      [watchingOpen, Outcome.Opened()],
      [empty, Outcome.Lines({ lines: [line("ADDED", { metadata: meta("a") })] })],
      [watchingClosed, Outcome.Lines({ lines: [line("ADDED", { metadata: meta("a") })] })],
      [empty, Outcome.Closed()],
      [listing, Outcome.Closed()],
      [empty, Outcome.Idle()],
      [listing, Outcome.Idle()],
    ]
    for (const [state, outcome] of cases)
      expect(transition(path, state, outcome)).toEqual({ events: [], state })
  })
})
