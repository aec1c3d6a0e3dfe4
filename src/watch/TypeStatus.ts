/**
 * What `/readyz?verbose` and the progress log say about the watched types: one status per type,
 * kept in a map that every watch updates and readers snapshot.
 */
import { Clock, type Duration, Effect, Metric, type Option, Schedule } from "effect"
import { forbiddenTypes } from "../metrics/Metrics.js"

export type TypePhase = "listing" | "synced" | "failing" | "forbidden"

export interface TypeStatus {
  readonly key: string
  readonly apiVersion: string
  readonly kind: string
  readonly phase: TypePhase
  /** Whether a list has completed at least once. */
  readonly synced: boolean
  readonly startedAt: number
  readonly objects: number
  readonly restarts: number
  readonly lastError: Option.Option<string>
}

/** Initial lists: how many of the watched types have listed once (or are forbidden). */
export interface ListProgress {
  readonly listed: number
  readonly forbidden: number
  readonly total: number
}

export interface TypeStatuses {
  readonly add: (id: string, status: TypeStatus) => Effect.Effect<void>
  readonly remove: (id: string) => Effect.Effect<void>
  readonly update: (id: string, f: (status: TypeStatus) => TypeStatus) => Effect.Effect<void>
  readonly all: Effect.Effect<ReadonlyArray<TypeStatus>>
  readonly progress: Effect.Effect<ListProgress>
  /**
   * Every type has listed once, is forbidden, or has failed for longer than `graceMillis` since
   * it started (one broken type does not hold readiness of the rest for long).
   */
  readonly ready: (graceMillis: number) => Effect.Effect<boolean>
}

export const make = (): TypeStatuses => {
  // One entry per type, replaced whole on change: readers get consistent snapshots of an entry,
  // and an update costs O(1) however many types there are (a copy of the map per update made the
  // start-up with a thousand types quadratic).
  const statuses = new Map<string, TypeStatus>()
  const countForbidden = Effect.suspend(() => {
    let n = 0
    for (const s of statuses.values()) if (s.phase === "forbidden") n++
    return Metric.set(forbiddenTypes, n)
  })
  const all = Effect.sync(() => [...statuses.values()])
  return {
    add: (id, status) => Effect.sync(() => void statuses.set(id, status)),
    remove: (id) =>
      Effect.suspend(() => {
        const removed = statuses.get(id)
        statuses.delete(id)
        return removed?.phase === "forbidden" ? countForbidden : Effect.void
      }),
    update: (id, f) =>
      Effect.suspend(() => {
        const current = statuses.get(id)
        if (current === undefined) return Effect.void
        const next = f(current)
        statuses.set(id, next)
        // Counted again only when a type enters or leaves "forbidden": recounting on every change
        // of phase made a thousand types' first lists quadratic.
        return current.phase !== next.phase && (current.phase === "forbidden" || next.phase === "forbidden")
          ? countForbidden
          : Effect.void
      }),
    all,
    progress: Effect.sync((): ListProgress => {
      let listed = 0
      let forbidden = 0
      for (const s of statuses.values()) {
        if (s.synced) listed++
        else if (s.phase === "forbidden") forbidden++
      }
      return { listed, forbidden, total: statuses.size }
    }),
    ready: (graceMillis) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) =>
          statuses.size > 0 &&
          [...statuses.values()].every(
            (s) =>
              s.synced ||
              s.phase === "forbidden" ||
              (s.phase === "failing" && now - s.startedAt > graceMillis),
          ),
      ),
  }
}

/** Start-up with a thousand types takes a while: says how far it is until every type has listed. */
export const logProgress = (statuses: TypeStatuses, interval: Duration.DurationInput): Effect.Effect<void> =>
  statuses.progress.pipe(
    Effect.flatMap((p) =>
      p.total > 0 && p.listed + p.forbidden < p.total
        ? Effect.logInfo(`listed ${p.listed} of ${p.total} types`).pipe(
            Effect.annotateLogs({ listed: p.listed, forbidden: p.forbidden, total: p.total }),
          )
        : Effect.void,
    ),
    Effect.repeat(Schedule.spaced(interval)),
    Effect.delay(interval),
    Effect.asVoid,
  )
