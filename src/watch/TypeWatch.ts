/**
 * One resource type, watched for ever: the `Watcher` state machine unfolded into a Stream by
 * `WatchStream`, its steps paced by `Backoff` after errors. Its raw events go to a `Store` (and
 * from there to the pipeline) in whoever consumes it; this module only says how long each error
 * waits.
 */
import { Duration, Effect, Option, type Stream } from "effect"
import type { KubeClient } from "../kube/KubeClient.js"
import * as Backoff from "../schedule/Backoff.js"
import { fixed, type Pause, backoff as scheduleNext } from "./Backoff.js"
import type { WatchEvent } from "./WatchEvent.js"
import * as WatchStream from "./WatchStream.js"
import type { WatchTarget } from "./WatchTarget.js"

export interface TypeWatchOptions extends WatchStream.WatchStreamOptions {
  readonly initialBackoff?: Duration.DurationInput
  readonly maxBackoff?: Duration.DurationInput
  /** A watch running this long without failing counts as healthy: the backoff starts again from its first delay. */
  readonly healthyAfter?: Duration.DurationInput
  /** Delay before listing a forbidden type again. */
  readonly forbiddenRetry?: Duration.DurationInput
}

export interface TypeWatch {
  readonly target: WatchTarget
  /** Raw events, one chunk per request; never fails, never ends. */
  readonly events: Stream.Stream<WatchEvent>
  /** `Stream.runForEachChunk(events, f)`, without a channel per type. */
  readonly forEachChunk: WatchStream.WatchStream["forEachChunk"]
  readonly relists: WatchStream.Relists
}

/** The watch backoff unless the options say otherwise: what a request-rate bound derives from. */
export const WATCH_BACKOFF = {
  initial: Duration.seconds(1),
  max: Duration.seconds(30),
  healthyAfter: Duration.seconds(30),
} as const

/** How long an event holds up the next request: errors back off, a 403 waits long, the rest not at all. */
export const pauseOf =
  (forbiddenRetry: Duration.Duration) =>
  (event: WatchEvent): Pause | undefined => {
    if (event._tag !== "Error" || event.retryAtOnce === true) return undefined
    const error = event.error
    if (error._tag !== "KubeApiError") return scheduleNext()
    if (error.code === 403) return fixed(forbiddenRetry)
    return scheduleNext(
      Option.match(error.retryAfterSeconds, { onNone: () => Duration.zero, onSome: Duration.seconds }),
    )
  }

/**
 * Makes the watches of many types with the same options. The backoff is built once here, not per
 * type: a Schedule is a value, and each stream drives it with a driver of its own.
 */
export const maker = (
  options: TypeWatchOptions = {},
): ((target: WatchTarget) => Effect.Effect<TypeWatch, never, KubeClient>) => {
  const streamOptions: WatchStream.WatchStreamOptions = {
    ...options,
    pacing: {
      schedule: Backoff.exponential({
        initial: options.initialBackoff ?? WATCH_BACKOFF.initial,
        max: options.maxBackoff ?? WATCH_BACKOFF.max,
      }),
      healthyAfter: options.healthyAfter ?? WATCH_BACKOFF.healthyAfter,
      pauseOf: pauseOf(Duration.decode(options.forbiddenRetry ?? Duration.minutes(5))),
    },
  }
  return (target) =>
    Effect.map(WatchStream.make(target, streamOptions), (watch) => ({
      target,
      relists: watch.relists,
      events: watch.events,
      forEachChunk: watch.forEachChunk,
    }))
}

export const make = (
  target: WatchTarget,
  options: TypeWatchOptions = {},
): Effect.Effect<TypeWatch, never, KubeClient> => maker(options)(target)
