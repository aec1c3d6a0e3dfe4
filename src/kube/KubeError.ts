/**
 * Failures of the Kubernetes access layer. Each says which request failed so that a log line
 * is enough to act on; none carries credentials.
 */
import * as Data from "effect/Data"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import { excerpt, reasonForCode, type Status, statusFromUnknown } from "./KubeStatus.js"

/** The kubeconfig could not be found, read or used (including a failing exec plugin or token file). */
export class KubeConfigError extends Data.TaggedError("KubeConfigError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** The API server answered with a non-2xx status. */
export class KubeApiError extends Data.TaggedError("KubeApiError")<{
  readonly method: string
  readonly path: string
  /** HTTP status, or `Status.code` for errors that arrive inside a watch stream. */
  readonly code: number
  /** The Kubernetes `StatusReason` (`Forbidden`, `NotFound`, `Expired`, `Gone`, …). */
  readonly reason: string
  readonly message: string
  /** Seconds the server asked us to wait before retrying. */
  readonly retryAfterSeconds: Option.Option<number>
  /** The decoded `Status`, `None` when the body was something else (see `body`). */
  readonly status: Option.Option<Status>
  /** An excerpt of the response body. */
  readonly body: string
}> {
  /** The error an `ERROR` watch event carries, e.g. `410 Expired` when the resourceVersion is too old. */
  static fromWatchEvent(method: string, path: string, object: unknown): KubeApiError {
    const status = statusFromUnknown(object)
    const code = status.pipe(
      Option.flatMapNullable((s) => s.code),
      Option.getOrElse(() => 500),
    )
    return new KubeApiError({
      method,
      path,
      code,
      reason: status.pipe(
        Option.flatMapNullable((s) => s.reason),
        Option.getOrElse(() => reasonForCode(code)),
      ),
      message: status.pipe(
        Option.flatMapNullable((s) => s.message),
        Option.getOrElse(() => `watch ERROR event: ${excerpt(safeJson(object))}`),
      ),
      retryAfterSeconds: status.pipe(Option.flatMapNullable((s) => s.details?.retryAfterSeconds)),
      status,
      body: excerpt(safeJson(object)),
    })
  }
}

/** Why a request never got an HTTP answer. */
export type KubeTransportReason =
  | "ConnectionRefused"
  | "ConnectionReset"
  | "Dns"
  | "Tls"
  | "Timeout"
  | "InvalidUrl"
  | "Other"

/** The request did not get an answer: connection refused, TLS failure, timeout, broken stream. */
export class KubeTransportError extends Data.TaggedError("KubeTransportError")<{
  readonly method: string
  readonly path: string
  readonly reason: KubeTransportReason
  readonly message: string
  readonly cause?: unknown
}> {}

/** The server answered 2xx but the body was not the JSON (or the shape) the caller expected. */
export class KubeDecodeError extends Data.TaggedError("KubeDecodeError")<{
  readonly method: string
  readonly path: string
  readonly message: string
  readonly cause?: unknown
}> {}

export type KubeError = KubeConfigError | KubeApiError | KubeTransportError | KubeDecodeError

export const isKubeApiError = (u: unknown): u is KubeApiError => Predicate.isTagged(u, "KubeApiError")

/** 410: the resourceVersion (or continue token) is too old; the caller must list again. */
export const isGone = (e: unknown): e is KubeApiError =>
  isKubeApiError(e) && (e.code === 410 || e.reason === "Gone" || e.reason === "Expired")

export const isForbidden = (e: unknown): e is KubeApiError => isKubeApiError(e) && e.code === 403

export const isNotFound = (e: unknown): e is KubeApiError => isKubeApiError(e) && e.code === 404

export const isUnauthorized = (e: unknown): e is KubeApiError => isKubeApiError(e) && e.code === 401

export const isConflict = (e: unknown): e is KubeApiError => isKubeApiError(e) && e.code === 409

const retriableReasons = new Set(["ServerTimeout", "Timeout", "TooManyRequests", "ServiceUnavailable"])

/**
 * Whether the same request may succeed later without the caller changing anything: transport
 * failures, throttling, server-side timeouts and 5xx, or any answer that carries Retry-After.
 * 410 Gone is not retriable: the caller must relist.
 */
export const isRetriable = (e: unknown): boolean => {
  if (Predicate.isTagged(e, "KubeTransportError")) return true
  if (!isKubeApiError(e)) return false
  if (e.code === 410 || e.reason === "Gone" || e.reason === "Expired") return false
  return (
    Option.isSome(e.retryAfterSeconds) ||
    e.code === 408 ||
    e.code === 429 ||
    (e.code >= 500 && e.code !== 501) ||
    retriableReasons.has(e.reason)
  )
}

const safeJson = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}
