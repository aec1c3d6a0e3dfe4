/**
 * `Retry-After` (RFC 9110 §10.2.3), shared by the Kubernetes client and the receiver's sender: both
 * servers use it to say when to come back.
 */
import * as Option from "effect/Option"

/**
 * Parses a `Retry-After` header value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * A date in the past means "now" (0). Garbage is `None` rather than a guess.
 */
export const parseRetryAfter = (value: string, now: Date): Option.Option<number> => {
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Option.some(Number.parseInt(trimmed, 10))
  // Date.parse accepts plain numbers and other loose forms; an HTTP-date always names a weekday.
  if (!/^[A-Za-z]{3},/.test(trimmed)) return Option.none()
  const at = Date.parse(trimmed)
  if (Number.isNaN(at)) return Option.none()
  return Option.some(Math.max(0, Math.ceil((at - now.getTime()) / 1000)))
}
