/**
 * Whether this process leads, as a `SubscriptionRef`: the sender reads it immediately before every
 * POST (fencing: a deposed leader sends nothing), and anything else can follow its changes.
 */
import { Context, Effect, Layer, SubscriptionRef } from "effect"

export class Leadership extends Context.Tag("k8s-vectordb-sync/Leadership")<
  Leadership,
  SubscriptionRef.SubscriptionRef<boolean>
>() {
  /** A single replica, or an embedding program without election: always the leader. */
  static readonly always: Layer.Layer<Leadership> = Layer.effect(Leadership, SubscriptionRef.make(true))
}

/** Reads leadership now; true when nothing elects (no `Leadership` in the context). */
export const isLeader: Effect.Effect<boolean> = Effect.flatMap(
  Effect.serviceOption(Leadership),
  (leadership) => (leadership._tag === "Some" ? SubscriptionRef.get(leadership.value) : Effect.succeed(true)),
)
