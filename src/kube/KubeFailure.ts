/**
 * How a failed exchange with the API server becomes a `KubeError`: a request that got no answer
 * (the reason read from the cause's code), an answer that was not 2xx (the `Status` it carried),
 * and a 2xx answer that was not the JSON the caller's Schema describes.
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { codeOf, describeCause } from "../http/DescribeCause.js"
import { KubeApiError, KubeDecodeError, KubeTransportError, type KubeTransportReason } from "./KubeError.js"
import { excerpt, parseStatus, reasonForCode, retryAfterSeconds } from "./KubeStatus.js"

/** The reason a request got no answer, read from its cause's code. */
export const transportReason = (cause: unknown): KubeTransportReason => {
  const code = codeOf(cause) ?? ""
  if (code === "ECONNREFUSED") return "ConnectionRefused"
  if (
    code === "ECONNRESET" ||
    code === "EPIPE" ||
    code === "ERR_STREAM_PREMATURE_CLOSE" ||
    // undici: the connection closed under the request; HTTP/2: the stream or session was reset.
    code === "UND_ERR_SOCKET" ||
    code === "UND_ERR_CLOSED" ||
    code.startsWith("ERR_HTTP2_")
  )
    return "ConnectionReset"
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "Dns"
  if (code === "ETIMEDOUT" || code === "ESOCKETTIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT")
    return "Timeout"
  if (
    code.startsWith("ERR_TLS") ||
    code.startsWith("ERR_SSL") ||
    code.includes("CERT") ||
    code === "DEPTH_ZERO_SELF_SIGNED_CERT" ||
    code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
  )
    return "Tls"
  return "Other"
}

/** A request that got no answer: the reason read from the cause (refused, reset, TLS, …). */
export const fromCause = (
  method: string,
  path: string,
  cause: unknown,
  reason: KubeTransportReason = transportReason(cause),
): KubeTransportError =>
  new KubeTransportError({
    method,
    path,
    reason,
    message: `${method} ${path}: ${reason === "Other" ? "" : `${reason}: `}${describeCause(cause)}`,
    cause,
  })

export const fromHttpClientError = (
  method: string,
  path: string,
  error: HttpClientError.HttpClientError,
): KubeTransportError =>
  error._tag === "RequestError" && error.reason === "InvalidUrl"
    ? fromCause(method, path, error.cause ?? error, "InvalidUrl")
    : fromCause(method, path, error.cause ?? error)

export const timeoutError = (method: string, path: string, timeout: Duration.Duration): KubeTransportError =>
  new KubeTransportError({
    method,
    path,
    reason: "Timeout",
    message: `${method} ${path}: no complete answer within ${Duration.format(timeout)}`,
  })

/** A failed answer (status, `Retry-After`, body) as the error the server meant. */
export const apiErrorOf = (
  method: string,
  path: string,
  code: number,
  retryAfter: string | undefined,
  body: string,
): Effect.Effect<KubeApiError> =>
  Effect.map(
    Effect.clockWith((clock) => clock.currentTimeMillis),
    (millis) => {
      const status = parseStatus(body)
      const reason = status.pipe(
        Option.flatMapNullable((s) => s.reason),
        Option.filter((r) => r !== ""),
        Option.getOrElse(() => reasonForCode(code)),
      )
      const message = status.pipe(
        Option.flatMapNullable((s) => s.message),
        Option.filter((m) => m !== ""),
        Option.getOrElse(
          () => `${method} ${path}: HTTP ${code}${body === "" ? "" : `: ${excerpt(body, 200)}`}`,
        ),
      )
      return new KubeApiError({
        method,
        path,
        code,
        reason,
        message,
        retryAfterSeconds: retryAfterSeconds(retryAfter, status, new Date(millis)),
        status,
        body: excerpt(body),
      })
    },
  )

/** Reads a failed response's body and turns it into the error the server meant. */
export const apiError = (
  method: string,
  path: string,
  response: HttpClientResponse.HttpClientResponse,
): Effect.Effect<KubeApiError> =>
  Effect.flatMap(response.text.pipe(Effect.orElseSucceed(() => "")), (body) =>
    apiErrorOf(method, path, response.status, response.headers["retry-after"], body),
  )

/** A 2xx body as JSON; an empty body is `null` (some DELETEs answer nothing). */
export const parseJson = (
  method: string,
  path: string,
  text: string,
): Effect.Effect<unknown, KubeDecodeError> =>
  text.trim() === ""
    ? Effect.succeed(null)
    : Effect.try({
        try: (): unknown => JSON.parse(text),
        catch: (cause) =>
          new KubeDecodeError({
            method,
            path,
            message: `${method} ${path}: response is not JSON: ${excerpt(text, 200)}`,
            cause,
          }),
      })

/** Decodes a parsed body with the caller's Schema; a mismatch says where. */
export const decodeWith =
  <A, I, R>(schema: Schema.Schema<A, I, R>, method: string, path: string) =>
  (u: unknown): Effect.Effect<A, KubeDecodeError, R> =>
    Schema.decodeUnknown(schema)(u).pipe(
      Effect.mapError(
        (error) =>
          new KubeDecodeError({
            method,
            path,
            message: `${method} ${path}: unexpected response: ${ParseResult.TreeFormatter.formatErrorSync(error)}`,
            cause: error,
          }),
      ),
    )
