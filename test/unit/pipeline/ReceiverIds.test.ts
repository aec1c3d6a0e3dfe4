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
})
