/**
 * The seam between the watches and the pipeline: one bounded queue that every watched type offers
 * its changes to and the pipeline reads from. Bounded, so that a pipeline that cannot keep up slows
 * the watches' reads (back-pressure) rather than growing memory or dropping anything. An element
 * is the changes of one network read, so a slot costs the same whatever the event rate.
 */
import { Context, Layer, Queue } from "effect"
import type { Change } from "./Change.js"

export class ChangeQueue extends Context.Tag("k8s-vectordb-sync/ChangeQueue")<
  ChangeQueue,
  Queue.Queue<ReadonlyArray<Change>>
>() {
  static readonly layer = (capacity = 1024): Layer.Layer<ChangeQueue> =>
    Layer.effect(ChangeQueue, Queue.bounded<ReadonlyArray<Change>>(capacity))
}
