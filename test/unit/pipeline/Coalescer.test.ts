/**
 * The keyed state's rules that time does not drive: the byte cap on a batch and what it remembers
 * of changes the receiver refused for good. Pure: explicit timestamps, no clock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Coalescer, type CoalescerOptions } from "../../../src/pipeline/Coalescer.js"
import { instanceCodec } from "../../../src/pipeline/KeyedCodec.js"
import { type Change, idOf } from "../../../src/record/Change.js"
import { payloadBytes } from "../../../src/record/Payload.js"
import { record, remove, upsert } from "../fixtures.js"

const options: CoalescerOptions = {
  debounceWindowMs: 0,
  debounceMaxWaitMs: 60_000,
  batchFlushIntervalMs: 1_000,
  batchMaxSize: 50,
}

/** An upsert whose entry weighs about `bytes` (names of equal length weigh exactly the same). */
const heavy = (name: string, bytes: number) => upsert(name, { blob: "x".repeat(bytes) })
const size = (change: Change) => instanceCodec.measure(change).size

const names = (batch: ReadonlyArray<Change> | undefined) => batch?.map((change) => idOf(change).split("/")[3])

describe("the byte cap", () => {
  const five = ["c0", "c1", "c2", "c3", "c4"].map((name) => heavy(name, 1_000))
  const one = size(five[0]!)
  // Three entries fit exactly; a fourth would be one entry too many.
  const cap = payloadBytes(3 * one, 3, 0)

  it("a batch stops growing before it would exceed the cap; a batch of exactly the cap is allowed", () => {
    const state = new Coalescer({ ...options, batchMaxBytes: cap }, instanceCodec)
    for (const change of five) state.offer(change, 0)
    expect(names(state.take(0))).toEqual(["c0", "c1", "c2"])
    // The two left fill no request: they wait for company like any ripe entries.
    expect(state.take(999)).toBeUndefined()
    expect(names(state.take(1_000))).toEqual(["c3", "c4"])
  })

  it("ripe entries that fill a request by bytes leave at once, without waiting for company", () => {
    const state = new Coalescer({ ...options, batchMaxBytes: cap }, instanceCodec)
    for (const change of five.slice(0, 3)) state.offer(change, 0)
    expect(state.hasBatch(0)).toBe(false) // exactly the cap: not yet more than one request holds
    state.offer(five[3]!, 0)
    expect(state.hasBatch(0)).toBe(true)
    expect(names(state.take(0))).toEqual(["c0", "c1", "c2"])
  })

  it("an entry superseded by a larger or smaller record counts with its new size", () => {
    const state = new Coalescer({ ...options, batchMaxBytes: cap }, instanceCodec)
    for (const change of five.slice(0, 3)) state.offer(change, 0)
    expect(state.hasBatch(0)).toBe(false)
    state.offer(heavy("c0", 5_000), 0)
    expect(state.hasBatch(0)).toBe(true)
    state.offer(five[0]!, 0)
    expect(state.hasBatch(0)).toBe(false)
  })

  it("an entry larger than the cap on its own is sent alone, and the others after it", () => {
    const state = new Coalescer({ ...options, batchMaxBytes: 2_048 }, instanceCodec)
    state.offer(upsert("small-1"), 0)
    state.offer(heavy("huge", 5_000), 0)
    state.offer(upsert("small-2"), 0)
    expect(state.hasBatch(0)).toBe(true)
    expect(names(state.take(0))).toEqual(["small-1"])
    expect(names(state.take(0))).toEqual(["huge"])
    expect(state.take(0)).toBeUndefined()
    expect(names(state.take(1_000))).toEqual(["small-2"])
  })

  it("deletes count too: deletes first, then the upserts that still fit", () => {
    const deletes = ["gone-0", "gone-1"].map(remove)
    const bytes = payloadBytes(size(deletes[0]!) + size(deletes[1]!) + one, 1, 2)
    const state = new Coalescer({ ...options, batchMaxBytes: bytes }, instanceCodec)
    for (const change of five.slice(0, 2)) state.offer(change, 0)
    for (const change of deletes) state.offer(change, 0)
    expect(names(state.take(0))).toEqual(["gone-0", "gone-1", "c0"])
    expect(state.take(0)).toBeUndefined()
  })

  it("the final flush respects the cap too, including entries still inside their debounce window", () => {
    const state = new Coalescer({ ...options, debounceWindowMs: 60_000, batchMaxBytes: cap }, instanceCodec)
    for (const change of five) state.offer(change, 0)
    state.close()
    expect(names(state.take(0))).toEqual(["c0", "c1", "c2"])
    expect(names(state.take(0))).toEqual(["c3", "c4"])
    expect(state.size).toBe(0)
  })

  it("a requeued batch counts again", () => {
    const state = new Coalescer({ ...options, batchMaxBytes: cap }, instanceCodec)
    for (const change of five) state.offer(change, 0)
    const first = state.take(0)!
    expect(state.hasBatch(0)).toBe(false)
    state.requeue(first, 0)
    expect(state.hasBatch(0)).toBe(true)
    expect(names(state.take(0))).toEqual(["c0", "c1", "c2"])
  })

  it("the entry count still caps a batch of small entries", () => {
    const state = new Coalescer({ ...options, batchMaxSize: 2, batchMaxBytes: 1 << 20 }, instanceCodec)
    for (const change of five) state.offer(change, 0)
    expect(names(state.take(0))).toEqual(["c0", "c1"])
  })
})

describe("changes refused for good", () => {
  it("a refused delete's id stays among the ids handed over, so that a resync offers it again", () => {
    const state = new Coalescer(options, instanceCodec)
    state.offer(upsert("a"), 0)
    state.offer(upsert("b"), 0)
    state.take(1_000)
    state.offer(remove("a"), 1_000)
    const batch = state.take(1_000)!
    expect(batch).toEqual([remove("a")])
    state.setAside(batch[0]!)
    expect([...state.forgetHandedOver()].sort()).toEqual([record("a").id, record("b").id])
    // A resync keeps them (the receiver may still hold them) until a delete of each is acknowledged.
    expect([...state.forgetHandedOver()].sort()).toEqual([record("a").id, record("b").id])
    state.offer(remove("a"), 2_000)
    state.take(2_000)
    expect(state.forgetHandedOver()).toEqual([record("b").id])
  })

  it("a delete that reaches the receiver is no longer among the ids handed over", () => {
    const state = new Coalescer(options, instanceCodec)
    state.offer(upsert("a"), 0)
    state.take(1_000)
    state.offer(remove("a"), 1_000)
    state.take(1_000)
    expect(state.forgetHandedOver()).toEqual([])
  })

  it("after a refused upsert, the same record is sent again: what the receiver holds is unknown", () => {
    const state = new Coalescer(options, instanceCodec)
    state.offer(upsert("a"), 0)
    const batch = state.take(1_000)!
    state.setAside(batch[0]!)
    state.offer(upsert("a"), 2_000)
    expect(state.take(3_000)).toEqual([upsert("a")])
  })
})
