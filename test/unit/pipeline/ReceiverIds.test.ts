/**
 * What the checkpoint reads of the keyed state: every id the receiver may hold. Driven through the
 * same `KeyedBatches` the pipeline uses, under the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import * as DebounceBatch from "../../../src/pipeline/DebounceBatch.js"
import { instanceCodec } from "../../../src/pipeline/KeyedCodec.js"
import { record, remove, upsert } from "../fixtures.js"

const options: DebounceBatch.CoalescerOptions = {
  debounceWindowMs: 0,
  debounceMaxWaitMs: 1,
  batchFlushIntervalMs: 0,
  batchMaxSize: 50,
}
const id = (name: string) => record(name).id
const sorted = (ids: ReadonlySet<string>) => [...ids].sort()

/** Takes the next due batch, leaving it in flight. */
const takeBatch = (keyed: DebounceBatch.KeyedBatches) =>
  Effect.map(Stream.runHead(keyed.batches), Option.getOrThrow)

describe("the ids the receiver may hold", () => {
  it.effect("pending, in flight and handed over ids count; an acknowledged delete removes its id", () =>
    Effect.gen(function* () {
      const keyed = yield* DebounceBatch.make(options, instanceCodec)
      yield* keyed.offerAll([upsert("a"), upsert("b")])
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("a"), id("b")]) // pending
      yield* takeBatch(keyed)
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("a"), id("b")]) // in flight, then handed over
      yield* keyed.settle
      yield* keyed.offerAll([remove("a")])
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("a"), id("b")]) // its delete is pending
      yield* takeBatch(keyed)
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("a"), id("b")]) // its delete is in flight
      yield* keyed.settle
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("b")])
    }),
  )

  it.effect("a failed delete keeps its id; a resync's forgetHandedOver keeps every id", () =>
    Effect.gen(function* () {
      const keyed = yield* DebounceBatch.make(options, instanceCodec)
      yield* keyed.offerAll([upsert("a"), upsert("b")])
      yield* takeBatch(keyed)
      yield* keyed.settle
      yield* keyed.offerAll([remove("a")])
      const batch = yield* takeBatch(keyed)
      yield* keyed.requeue(batch)
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("a"), id("b")])
      expect([...(yield* keyed.forgetHandedOver)].sort()).toEqual([id("b")])
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("a"), id("b")])
      // Forgotten means re-sent: the same record goes out again.
      yield* keyed.offerAll([upsert("b")])
      expect(yield* keyed.pending).toBe(2)
    }),
  )

  it.effect("restored ids count until deleted, and do not suppress the first upsert of an id", () =>
    Effect.gen(function* () {
      const keyed = yield* DebounceBatch.make(options, instanceCodec)
      yield* keyed.restoreHandedOver([id("old"), id("kept")])
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("kept"), id("old")])
      yield* keyed.offerAll([upsert("kept"), remove("old")])
      const batch = yield* takeBatch(keyed)
      expect(batch.map(instanceCodec.idOf)).toEqual([id("old"), id("kept")])
      yield* keyed.settle
      expect(sorted(yield* keyed.receiverIds)).toEqual([id("kept")])
    }),
  )

  it.effect("its version moves whenever the ids may have moved, and not for updates of held ids", () =>
    Effect.gen(function* () {
      const keyed = yield* DebounceBatch.make(options, instanceCodec)
      let seen = { ids: sorted(yield* keyed.receiverIds), version: yield* keyed.receiverIdsVersion }
      /** Runs a step; whenever the ids differ afterwards, so must the version. */
      const step = <A>(effect: Effect.Effect<A>) =>
        Effect.gen(function* () {
          const result = yield* effect
          const now = { ids: sorted(yield* keyed.receiverIds), version: yield* keyed.receiverIdsVersion }
          if (now.ids.join() !== seen.ids.join()) expect(now.version).not.toBe(seen.version)
          const moved = now.version !== seen.version
          seen = now
          return { result, moved }
        })
      expect(seen).toEqual({ ids: [], version: 0 })
      yield* step(keyed.restoreHandedOver([id("old")]))
      yield* step(keyed.offerAll([upsert("a"), upsert("b")]))
      const first = yield* step(takeBatch(keyed))
      yield* step(keyed.settle)
      // Updates of ids the receiver holds: the checkpoint has nothing new to write.
      const updated = yield* step(keyed.offerAll([upsert("a", { v: "2" }), upsert("b", { v: "2" })]))
      const updateTaken = yield* step(takeBatch(keyed))
      const updateSettled = yield* step(keyed.settle)
      expect([first.result.length, updated.moved, updateTaken.moved, updateSettled.moved]).toEqual([
        2,
        false,
        false,
        false,
      ])
      yield* step(keyed.offerAll([remove("a"), remove("old")]))
      yield* step(takeBatch(keyed))
      yield* step(keyed.settle)
      expect(seen.ids).toEqual([id("b")])
      yield* step(keyed.offerAll([remove("b"), upsert("c")]))
      const batch = yield* step(takeBatch(keyed))
      yield* step(keyed.requeue(batch.result))
      yield* step(takeBatch(keyed))
      yield* step(keyed.setAside(remove("b")))
      yield* step(keyed.settle)
      expect(seen.ids).toEqual([id("b"), id("c")])
      expect((yield* step(keyed.restoreHandedOver([id("c")]))).moved).toBe(false)
    }),
  )
})
