/**
 * Whether this process leads, as a `SubscriptionRef`: the sender reads it immediately before every
 * POST (fencing: a deposed leader sends nothing), and anything else can follow its changes.
 */
import { Clock, Context, Effect, Layer, Option, SubscriptionRef } from "effect"
import { WriteFence } from "../http/WriteFence.js"

export class Leadership extends Context.Tag("k8s-vectordb-sync/Leadership")<
  Leadership,
  SubscriptionRef.SubscriptionRef<boolean>
>() {
  /** A single replica, or an embedding program without election: always the leader. */
  static readonly always: Layer.Layer<Leadership> = Layer.effect(Leadership, SubscriptionRef.make(true))
}

/**
 * Until when (epoch ms on this process's clock) leadership holds without another renewal: the start
 * of the last successful renewal plus the renew deadline, after which a standby may soon take over.
 * `Leadership` only turns false when the elector's fiber runs; a process that was frozen (SIGSTOP, a
 * paused VM, a long GC) may run its sender first on waking up, so the sender judges by the clock too.
 */
export class LeadershipExpiry extends Context.Tag("k8s-vectordb-sync/LeadershipExpiry")<
  LeadershipExpiry,
  Effect.Effect<number>
>() {}

/**
 * Reads leadership now: published as leading and, where an elector says until when, not past that
 * moment by this process's clock. True when nothing elects (no `Leadership` in the context).
 */
export const isLeader: Effect.Effect<boolean> = Effect.gen(function* () {
  const leadership = yield* Effect.serviceOption(Leadership)
  if (Option.isNone(leadership)) return true
  if (!(yield* SubscriptionRef.get(leadership.value))) return false
  const expiry = yield* Effect.serviceOption(LeadershipExpiry)
  if (Option.isNone(expiry)) return true
  return (yield* Clock.currentTimeMillis) < (yield* expiry.value)
})

/**
 * `isLeader` over an elector's state as the synchronous `WriteFence` the receivers' HTTP client
 * asks as it writes each request. On the process's own clock, as the elector's expiry is.
 */
export const writeFence = (
  leadership: SubscriptionRef.SubscriptionRef<boolean>,
  expiry: Effect.Effect<number>,
): Context.Context<WriteFence> => {
  const check = isLeader.pipe(
    Effect.provideService(Leadership, leadership),
    Effect.provideService(LeadershipExpiry, expiry),
  )
  return Context.make(WriteFence, () => Effect.runSync(check))
}
