/**
 * The rules of leader election through a Lease, as client-go has them: pure functions of values
 * (a record, an identity, durations, "now" on our own clock), no services and no I/O, so that the
 * elector (`Elector.ts`) only sequences them and the tests pin them without a clock.
 *
 * Expiry is judged on our own clock: a lease is expired once `leaseDurationSeconds` have passed
 * since *we* last saw its record change. The holder's `renewTime` is never compared with our clock,
 * so clock skew between nodes does not matter.
 */
import { Data, Duration, Option } from "effect"

/** What a Lease's spec says, normalised (client-go's `LeaderElectionRecord`). */
export interface LeaseRecord {
  /** Empty: nobody holds the lease (never acquired, or released). */
  readonly holderIdentity: string
  readonly leaseDurationSeconds: number
  /** MicroTime text as written (`2026-11-25T10:00:00.123000Z`), `undefined` when absent. */
  readonly acquireTime: string | undefined
  readonly renewTime: string | undefined
  readonly leaseTransitions: number
}

/** A record together with the time, on our clock, when we first saw it in this exact state. */
export interface Observation {
  readonly record: LeaseRecord
  readonly observedAt: number
}

export const sameRecord = (a: LeaseRecord, b: LeaseRecord): boolean =>
  a.holderIdentity === b.holderIdentity &&
  a.leaseDurationSeconds === b.leaseDurationSeconds &&
  a.acquireTime === b.acquireTime &&
  a.renewTime === b.renewTime &&
  a.leaseTransitions === b.leaseTransitions

/**
 * The observation after reading `record` at `now`: the clock only restarts when the record changed.
 * A record read again unchanged keeps its first `observedAt`, which is what lets a holder that
 * stopped renewing expire; a renewal (new `renewTime`) restarts it.
 */
export const observe = (
  previous: Option.Option<Observation>,
  record: LeaseRecord,
  now: number,
): Observation =>
  Option.isSome(previous) && sameRecord(previous.value.record, record)
    ? previous.value
    : { record, observedAt: now }

/** When, on our clock, the observed lease expires: `observedAt + leaseDurationSeconds`. */
export const expiresAt = (observation: Observation): number =>
  observation.observedAt + observation.record.leaseDurationSeconds * 1000

/** Expired from `expiresAt` on (client-go: valid while `observedTime + duration` is after now). */
export const isExpired = (observation: Observation, now: number): boolean => now >= expiresAt(observation)

export type Decision = Data.TaggedEnum<{
  /** No Lease object: create it. */
  Create: {}
  /** We hold it: renew (same acquireTime and transitions). */
  Renew: {}
  /** Free (released) or expired: take it over (new acquireTime, one more transition). */
  TakeOver: { readonly previousHolder: string }
  /** Somebody else holds a valid lease: wait. */
  Wait: { readonly holder: string; readonly expiresAt: number }
}>
export const Decision = Data.taggedEnum<Decision>()

/** "May I take this lease at time `now`?" — the whole acquisition rule of client-go. */
export const decide = (identity: string, observation: Option.Option<Observation>, now: number): Decision => {
  if (Option.isNone(observation)) return Decision.Create()
  const { record } = observation.value
  if (record.holderIdentity === identity) return Decision.Renew()
  if (record.holderIdentity === "" || isExpired(observation.value, now))
    return Decision.TakeOver({ previousHolder: record.holderIdentity })
  return Decision.Wait({ holder: record.holderIdentity, expiresAt: expiresAt(observation.value) })
}

/** Lease durations are whole seconds on the wire: round up, at least 1. */
export const leaseDurationSeconds = (leaseDuration: Duration.DurationInput): number =>
  Math.max(1, Math.ceil(Duration.toMillis(Duration.decode(leaseDuration)) / 1000))

/**
 * `metav1.MicroTime` text: RFC 3339 with exactly six fractional digits. The API server parses it
 * with a fixed-width layout, so the three digits of `toISOString` would be rejected.
 */
export const microTime = (epochMillis: number): string =>
  new Date(epochMillis).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z")

/** The record to write for a Create, Renew or TakeOver decision made by `identity` at `now`. */
export const nextRecord = (
  decision: Decision,
  identity: string,
  observed: Option.Option<LeaseRecord>,
  durationSeconds: number,
  now: number,
): LeaseRecord => {
  const time = microTime(now)
  const previous = Option.getOrUndefined(observed)
  switch (decision._tag) {
    case "Renew":
      return {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: previous?.acquireTime ?? time,
        renewTime: time,
        leaseTransitions: previous?.leaseTransitions ?? 0,
      }
    case "Create":
    case "TakeOver":
    case "Wait":
      return {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: time,
        renewTime: time,
        leaseTransitions: previous === undefined ? 0 : previous.leaseTransitions + 1,
      }
  }
}

/** What a leader writes when it steps down: nobody holds it, and it is as good as expired. */
export const releasedRecord = (current: LeaseRecord, now: number): LeaseRecord => ({
  holderIdentity: "",
  leaseDurationSeconds: 1,
  acquireTime: microTime(now),
  renewTime: microTime(now),
  leaseTransitions: current.leaseTransitions,
})
