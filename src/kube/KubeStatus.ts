/**
 * The API server's `Status` object (meta/v1) and the pure rules for reading failure responses:
 * which reason a bare HTTP status stands for and how long the server asks us to wait.
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { parseRetryAfter } from "../http/RetryAfter.js"

export { parseRetryAfter } from "../http/RetryAfter.js"

export class StatusCause extends Schema.Class<StatusCause>("StatusCause")({
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  field: Schema.optional(Schema.String),
}) {}

export class StatusDetails extends Schema.Class<StatusDetails>("StatusDetails")({
  name: Schema.optional(Schema.String),
  group: Schema.optional(Schema.String),
  kind: Schema.optional(Schema.String),
  uid: Schema.optional(Schema.String),
  causes: Schema.optional(Schema.Array(StatusCause)),
  retryAfterSeconds: Schema.optional(Schema.Number),
}) {}

/** `kind: Status` as the API server writes it for failures (and for some successful deletes). */
export class Status extends Schema.Class<Status>("Status")({
  kind: Schema.Literal("Status"),
  apiVersion: Schema.optional(Schema.String),
  status: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  details: Schema.optional(StatusDetails),
  code: Schema.optional(Schema.Number),
}) {}

const decodeStatus = Schema.decodeUnknownOption(Status)

/**
 * Reads a `Status` from a response body. Anything else (HTML from a proxy, an empty body,
 * another kind) is `None`, so that the caller can still report the raw excerpt.
 */
export const parseStatus = (body: string): Option.Option<Status> => {
  if (body.trim() === "") return Option.none()
  try {
    return decodeStatus(JSON.parse(body))
  } catch {
    return Option.none()
  }
}

/** Reads a `Status` that has already been parsed, e.g. the object of a watch `ERROR` event. */
export const statusFromUnknown = (u: unknown): Option.Option<Status> => decodeStatus(u)

// The reasons client-go assigns when the server sent no Status (apimachinery errors.NewGenericServerResponse),
// so that callers can match on `reason` whatever produced the response.
const reasonsByCode: Readonly<Record<number, string>> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Gone",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
}

/** The Kubernetes `StatusReason` conventionally meant by an HTTP status code, `"Unknown"` if none. */
export const reasonForCode = (code: number): string => reasonsByCode[code] ?? "Unknown"

/**
 * The delay the server asked for: the `Retry-After` header wins (it is what the API server's
 * priority-and-fairness and max-in-flight filters set), `details.retryAfterSeconds` otherwise.
 */
export const retryAfterSeconds = (
  header: string | undefined,
  status: Option.Option<Status>,
  now: Date,
): Option.Option<number> =>
  Option.fromNullable(header).pipe(
    Option.flatMap((h) => parseRetryAfter(h, now)),
    Option.orElse(() =>
      status.pipe(
        Option.flatMapNullable((s) => s.details?.retryAfterSeconds),
        Option.filter((n) => Number.isFinite(n) && n >= 0),
      ),
    ),
  )

/** At most `max` characters of a body, on one line, for error messages and logs. */
export const excerpt = (body: string, max = 512): string => {
  const flat = body.replace(/\s+/g, " ").trim()
  return flat.length <= max ? flat : `${flat.slice(0, max)}…`
}
