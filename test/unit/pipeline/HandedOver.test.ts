/**
 * What the keyed state remembers of the receiver: an upsert's fingerprint until it is forgotten,
 * unknown records that no upsert matches, and restored ids that never override what is known.
 */
import { describe, expect, it } from "@effect/vitest"
import { HandedOver } from "../../../src/pipeline/HandedOver.js"

describe("HandedOver", () => {
  it("holds the fingerprint handed over until a delete or a failed send forgets it", () => {
    const handedOver = new HandedOver()
    handedOver.handOver("a", "f1")
    expect(handedOver.holds("a", "f1")).toBe(true)
    expect(handedOver.holds("a", "f2")).toBe(false)
    handedOver.handOver("a", undefined)
    expect([...handedOver.ids()]).toEqual([])
    handedOver.handOver("b", 7)
    handedOver.forget("b")
    expect(handedOver.holds("b", 7)).toBe(false)
  })

  it("keeps ids with an unknown record, which no upsert matches", () => {
    const handedOver = new HandedOver()
    handedOver.handOver("a", "f1")
    handedOver.unknown("b")
    expect(handedOver.forgetRecords()).toEqual(["a", "b"])
    expect(handedOver.holds("a", "f1")).toBe(false)
    expect([...handedOver.ids()]).toEqual(["a", "b"])
  })

  it("restores ids without overriding a known record", () => {
    const handedOver = new HandedOver()
    handedOver.handOver("a", "f1")
    handedOver.restore(["a", "c"])
    expect(handedOver.holds("a", "f1")).toBe(true)
    expect([...handedOver.ids()]).toEqual(["a", "c"])
  })
})
