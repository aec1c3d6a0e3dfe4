import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import {
  Decision,
  decide,
  isExpired,
  type LeaseRecord,
  leaseDurationSeconds,
  microTime,
  nextRecord,
  type Observation,
  observe,
  releasedRecord,
} from "../../../src/leader/Rules.js"
import { record } from "./fixtures.js"

const seen = (r: LeaseRecord, observedAt: number): Option.Option<Observation> =>
  Option.some({ record: r, observedAt })

describe("the acquisition rule", () => {
  it("creates an absent lease", () => {
    expect(decide("me", Option.none(), 0)).toEqual(Decision.Create())
  })

  it("renews a lease it holds, even one that would look expired", () => {
    expect(decide("me", seen(record({ holderIdentity: "me" }), 0), 1_000_000)).toEqual(Decision.Renew())
  })

  it("takes a released lease (empty holder) at once, whatever its duration", () => {
    expect(decide("me", seen(record({ holderIdentity: "" }), 1_000), 1_000)).toEqual(
      Decision.TakeOver({ previousHolder: "" }),
    )
  })

  it("waits for another holder until leaseDurationSeconds after it last saw the record change, not a millisecond less", () => {
    const observation = seen(record(), 1_000)
    expect(decide("me", observation, 15_999)).toEqual(Decision.Wait({ holder: "other", expiresAt: 16_000 }))
    expect(decide("me", observation, 16_000)).toEqual(Decision.TakeOver({ previousHolder: "other" }))
    expect(isExpired(observation.pipe(Option.getOrThrow), 15_999)).toBe(false)
    expect(isExpired(observation.pipe(Option.getOrThrow), 16_000)).toBe(true)
  })

  it("judges expiry by its own clock only: a renewTime in the past (clock skew) does not make a fresh record expired", () => {
    const skewed = record({ renewTime: "2020-01-01T00:00:00.000000Z" })
    const now = Date.parse("2026-11-25T10:00:00Z")
    expect(decide("me", Option.some(observe(Option.none(), skewed, now)), now + 14_999)._tag).toBe("Wait")
  })

  it("a record seen again unchanged keeps its first observation time; any change restarts it", () => {
    const first = observe(Option.none(), record(), 1_000)
    expect(first.observedAt).toBe(1_000)
    const same = observe(Option.some(first), record(), 9_000)
    expect(same.observedAt).toBe(1_000)
    const renewed = observe(Option.some(same), record({ renewTime: "2026-11-25T10:00:02.000000Z" }), 9_000)
    expect(renewed.observedAt).toBe(9_000)
    const newHolder = observe(Option.some(renewed), record({ holderIdentity: "third" }), 9_500)
    expect(newHolder.observedAt).toBe(9_500)
  })

  it("a lease without a duration is expired as soon as it is seen", () => {
    expect(decide("me", seen(record({ leaseDurationSeconds: 0 }), 5), 5)._tag).toBe("TakeOver")
  })
})

describe("the records written", () => {
  it("rounds the lease duration up to whole seconds, at least 1", () => {
    expect(leaseDurationSeconds(3_000)).toBe(3)
    expect(leaseDurationSeconds(3_001)).toBe(4)
    expect(leaseDurationSeconds(999)).toBe(1)
    expect(leaseDurationSeconds(1)).toBe(1)
    expect(leaseDurationSeconds("15 seconds")).toBe(15)
  })

  it("writes MicroTime with exactly six fractional digits", () => {
    expect(microTime(Date.parse("2026-11-25T10:00:00.123Z"))).toBe("2026-11-25T10:00:00.123000Z")
    expect(microTime(0)).toBe("1970-01-01T00:00:00.000000Z")
  })

  it("create starts at 0 transitions, takeover adds one, renew keeps acquireTime and transitions", () => {
    const t = Date.parse("2026-11-25T11:00:00.000Z")
    expect(nextRecord(Decision.Create(), "me", Option.none(), 15, t)).toEqual({
      holderIdentity: "me",
      leaseDurationSeconds: 15,
      acquireTime: "2026-11-25T11:00:00.000000Z",
      renewTime: "2026-11-25T11:00:00.000000Z",
      leaseTransitions: 0,
    })
    expect(
      nextRecord(Decision.TakeOver({ previousHolder: "other" }), "me", Option.some(record()), 15, t),
    ).toEqual({
      holderIdentity: "me",
      leaseDurationSeconds: 15,
      acquireTime: "2026-11-25T11:00:00.000000Z",
      renewTime: "2026-11-25T11:00:00.000000Z",
      leaseTransitions: 4,
    })
    expect(nextRecord(Decision.Renew(), "me", Option.some(record({ holderIdentity: "me" })), 15, t)).toEqual({
      holderIdentity: "me",
      leaseDurationSeconds: 15,
      acquireTime: "2026-11-25T10:00:00.000000Z",
      renewTime: "2026-11-25T11:00:00.000000Z",
      leaseTransitions: 3,
    })
  })

  it("release empties the holder, shortens the duration to 1 s and keeps the transitions", () => {
    expect(releasedRecord(record({ holderIdentity: "me" }), 0)).toEqual({
      holderIdentity: "",
      leaseDurationSeconds: 1,
      acquireTime: "1970-01-01T00:00:00.000000Z",
      renewTime: "1970-01-01T00:00:00.000000Z",
      leaseTransitions: 3,
    })
  })
})
