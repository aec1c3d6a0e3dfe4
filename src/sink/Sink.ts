/**
 * Where batches go. The controller ships an HTTP sender and a dry-run printer; an embedding program
 * provides its own Layer (for example one that writes to its database directly).
 */
import { Context, Data, type Duration, Effect, Layer } from "effect"
import type { SyncPayload } from "../record/Payload.js"

/**
 * The receiver could not take the payload now (network, timeout, 408, 429, 5xx). Sending again
 * later may work; `retryAfter` is the receiver's own hint.
 */
export class SinkUnavailable extends Data.TaggedError("SinkUnavailable")<{
  readonly reason: string
  readonly status?: number | undefined
  readonly retryAfter?: Duration.Duration | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.status === undefined ? this.reason : `${this.status}: ${this.reason}`
  }
}

/**
 * Not sent because this process does not lead (checked before each batch, and by the HTTP client
 * as it writes): the changes are held, not retried as a failing receiver's would be.
 */
export const notLeader = new SinkUnavailable({ reason: "not the leader: holding changes" })

/**
 * The receiver refused the payload for good (a 4xx other than 401, 403, 404, 408 and 429): never
 * retried as is. The pipeline splits a refused batch until only single entries are refused.
 */
export class SinkRejected extends Data.TaggedError("SinkRejected")<{
  /** The HTTP status; 0 when the payload failed its wire Schema and was never sent. */
  readonly status: number
  /** The start of the response body, for the log. */
  readonly body: string
}> {
  override get message(): string {
    return `rejected with ${this.status}: ${this.body}`
  }

  /**
   * 413 Payload Too Large: the request, not an entry, is what the receiver refused. Splitting fixes
   * it unless a single entry is larger than the receiver accepts.
   */
  get tooLarge(): boolean {
    return this.status === 413
  }
}

export type SinkError = SinkUnavailable | SinkRejected

export interface InstanceSinkService {
  /** Delivers one payload. Idempotent on the receiver side: the same payload may arrive twice. */
  readonly send: (payload: SyncPayload) => Effect.Effect<void, SinkError>
}

export class InstanceSink extends Context.Tag("k8s-vectordb-sync/InstanceSink")<
  InstanceSink,
  InstanceSinkService
>() {
  /** A sink from a plain function, for library users and tests. */
  static readonly make = (send: InstanceSinkService["send"]): InstanceSinkService => ({ send })

  static readonly layer = <E, R>(
    send: Effect.Effect<InstanceSinkService["send"], E, R>,
  ): Layer.Layer<InstanceSink, E, R> => Layer.effect(InstanceSink, Effect.map(send, InstanceSink.make))
}
