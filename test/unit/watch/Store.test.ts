/**
 * The store downstream of the raw events: UIDs per key, deletes synthesised at a list's end,
 * delete-then-upsert for an object re-created under the same name, the changes in record form.
 */
import { describe, expect, it } from "@effect/vitest"
import type * as Change from "../../../src/record/Change.js"
import * as ObjectFilter from "../../../src/watch/ObjectFilter.js"
import * as Store from "../../../src/watch/Store.js"
import { type Metadata, WatchEvent } from "../../../src/watch/WatchEvent.js"

const kind = { group: "apps", version: "v1", kind: "Deployment" }
const id = (name: string, namespace = "ns") => `${namespace}/apps/v1/Deployment/${name}`
const meta = (name: string, uid = `u-${name}`): Metadata => ({
  name,
  namespace: "ns",
  uid,
  labels: { app: name },
  creationTimestamp: "2026-01-01T00:00:00Z",
})

const run = (store: Store.Store, events: ReadonlyArray<WatchEvent>) => {
  const changes: Array<Change.Change> = []
  const outcomes = events.map((event) => store.apply(event, changes)).filter((o) => o !== undefined)
  return {
    changes: changes.map((c) => (c._tag === "Upsert" ? `+${c.record.id}` : `-${c.id}`)),
    records: changes.flatMap((c) => (c._tag === "Upsert" ? [c.record] : [])),
    outcomes,
  }
}

const list = (...pages: ReadonlyArray<ReadonlyArray<Metadata>>): ReadonlyArray<WatchEvent> => [
  WatchEvent.Init(),
  ...pages.map((objects) => WatchEvent.InitPage({ objects })),
  WatchEvent.InitDone({ resourceVersion: "1" }),
]

describe("Store", () => {
  it("a first list upserts every object, in record form, and knows them", () => {
    const store = Store.make(kind)
    const result = run(store, list([meta("a")], [{ ...meta("b"), namespace: undefined }]))
    expect(result.changes).toEqual([`+${id("a")}`, `+${id("b", "_cluster")}`])
    expect(result.records[0]).toEqual({
      id: id("a"),
      namespace: "ns",
      name: "a",
      kind: "Deployment",
      apiVersion: "apps/v1",
      apiGroup: "apps",
      labels: { app: "a" },
      annotations: {},
      createdAt: "2026-01-01T00:00:00Z",
    })
    expect(result.outcomes).toEqual([{ objects: 2, deletes: 0 }])
    expect([...Store.knownIds(store)].sort()).toEqual([id("b", "_cluster"), id("a")])
  })

  it("a relist deletes what vanished meanwhile, at its end", () => {
    const store = Store.make(kind)
    run(store, list([meta("a"), meta("b")]))
    const result = run(store, list([meta("a")]))
    expect(result.changes).toEqual([`+${id("a")}`, `-${id("b")}`])
    expect(result.outcomes).toEqual([{ objects: 1, deletes: 1 }])
    expect(Store.knownIds(store)).toEqual([id("a")])
  })

  it("an object re-created under the same name (another UID) is deleted, then upserted", () => {
    const store = Store.make(kind)
    run(store, list([meta("a", "uid-1")]))
    const result = run(store, list([meta("a", "uid-2")]))
    expect(result.changes).toEqual([`-${id("a")}`, `+${id("a")}`])
    expect(result.outcomes).toEqual([{ objects: 1, deletes: 1 }])
  })

  it("watch events: Apply upserts and is known, Delete deletes and is forgotten", () => {
    const store = Store.make(kind)
    run(store, list([]))
    const result = run(store, [
      WatchEvent.Apply({ object: meta("a") }),
      WatchEvent.Apply({ object: meta("b") }),
      WatchEvent.Delete({ object: meta("a") }),
    ])
    expect(result.changes).toEqual([`+${id("a")}`, `+${id("b")}`, `-${id("a")}`])
    expect(Store.knownIds(store)).toEqual([id("b")])
    // the next list finds b with the UID Apply recorded: no delete
    expect(run(store, list([meta("b")])).outcomes).toEqual([{ objects: 1, deletes: 0 }])
  })

  it("a list that never completes changes nothing known; the next list starts over", () => {
    const store = Store.make(kind)
    run(store, list([meta("a"), meta("b")]))
    run(store, [WatchEvent.Init(), WatchEvent.InitPage({ objects: [meta("a"), meta("b")] })])
    // b vanishes between the failed list and the next one
    const result = run(store, list([meta("a")]))
    expect(result.changes).toEqual([`+${id("a")}`, `-${id("b")}`])
    expect(Store.knownIds(store)).toEqual([id("a")])
  })

  it("a first list that breaks off: what it sent is deleted by the next list if gone, and by a stop", () => {
    const store = Store.make(kind)
    run(store, [WatchEvent.Init(), WatchEvent.InitPage({ objects: [meta("a"), meta("b")] })])
    // The type stops now: both were sent, both are removed.
    expect([...Store.knownIds(store)].sort()).toEqual([id("a"), id("b")])
    // Or it lists again, and b has vanished meanwhile.
    const result = run(store, list([meta("a")]))
    expect(result.changes).toEqual([`+${id("a")}`, `-${id("b")}`])
    expect(Store.knownIds(store)).toEqual([id("a")])
  })

  it("a Delete during a list is not resurrected by its end", () => {
    const store = Store.make(kind)
    run(store, list([meta("a")]))
    const result = run(store, [
      WatchEvent.Init(),
      WatchEvent.InitPage({ objects: [meta("a"), meta("b")] }),
      WatchEvent.Delete({ object: meta("b") }),
      WatchEvent.InitDone({ resourceVersion: "2" }),
    ])
    expect(result.changes).toEqual([`+${id("a")}`, `+${id("b")}`, `-${id("b")}`])
    expect(Store.knownIds(store)).toEqual([id("a")])
    expect(result.outcomes).toEqual([{ objects: 1, deletes: 0 }])
  })

  it("errors and restarts change nothing", () => {
    const store = Store.make(kind)
    run(store, list([meta("a")]))
    expect(run(store, [WatchEvent.Restarted({ reason: "closed" })]).changes).toEqual([])
    expect(store.size()).toBe(1)
  })
})

describe("Store with an object filter", () => {
  const optedOut = (m: Metadata): Metadata => ({ ...m, annotations: { "vectordb-sync.io/exclude": "true" } })
  const filter = ObjectFilter.make({ watchNamespaces: [], excludeNamespaces: ["dev-*"] })

  it("a list leaves out what the filter does not admit", () => {
    const store = Store.make(kind, filter.admits)
    const result = run(store, list([meta("a"), { ...meta("b"), namespace: "dev-1" }, optedOut(meta("c"))]))
    expect(result.changes).toEqual([`+${id("a")}`])
    expect(result.outcomes).toEqual([{ objects: 1, deletes: 0 }])
  })

  it("an object that gets the opt-out annotation is deleted; one that loses it is upserted", () => {
    const store = Store.make(kind, filter.admits)
    run(store, list([meta("a")]))
    const out = run(store, [
      WatchEvent.Apply({ object: optedOut(meta("a")) }),
      WatchEvent.Apply({ object: optedOut(meta("a")) }),
      WatchEvent.Delete({ object: optedOut(meta("x")) }),
      WatchEvent.Apply({ object: meta("a") }),
    ])
    expect(out.changes).toEqual([`-${id("a")}`, `+${id("a")}`])
    expect(Store.knownIds(store)).toEqual([id("a")])
  })

  it("a relist after an object was opted out deletes it", () => {
    const store = Store.make(kind, filter.admits)
    run(store, list([meta("a"), meta("b")]))
    const result = run(store, list([meta("a"), optedOut(meta("b"))]))
    expect(result.changes).toEqual([`+${id("a")}`, `-${id("b")}`])
  })
})
