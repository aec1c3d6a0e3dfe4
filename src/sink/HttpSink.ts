/**
 * The HTTP sender: one POST of `{upserts, deletes}` per batch to `INSTANCES_ENDPOINT`.
 *
 * One call is one attempt. Retrying belongs to the pipeline, which requeues an undelivered batch
 * into the keyed state: a retry then carries the newest state of each id instead of the stale one,
 * and an older state can never overtake a newer one.
 */
import type * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Duration, Effect, Layer, Option, Redacted, type Schema } from "effect"
import { describeFailure } from "../http/DescribeCause.js"
import { parseRetryAfter } from "../http/RetryAfter.js"
import { WriteFenceClosed } from "../http/WriteFence.js"
import { SyncPayload } from "../record/Payload.js"
import type { Header } from "./HeaderFile.js"
import {
  InstanceSink,
  type InstanceSinkService,
  notLeader,
  type SinkError,
  SinkRejected,
  SinkUnavailable,
} from "./Sink.js"

export interface HttpSinkOptions {
  readonly url: URL | string
  /** Upper bound on one attempt, connection to last byte. */
  readonly timeout: Duration.DurationInput
  /** Read before every request so that a rotated token is picked up without a restart. */
  readonly bearerToken?: Effect.Effect<Option.Option<Redacted.Redacted<string>>> | undefined
  /** Extra headers (`ENDPOINT_HEADERS_FILE`), also read before every request. */
  readonly headers?: Effect.Effect<ReadonlyArray<Header>> | undefined
}

const withHeaders =
  (headers: ReadonlyArray<Header>) =>
  (request: HttpClientRequest.HttpClientRequest): HttpClientRequest.HttpClientRequest =>
    headers.reduce(
      (r, header) => HttpClientRequest.setHeader(r, header.name, Redacted.value(header.value)),
      request,
    )

const BODY_EXCERPT = 512

/**
 * Failures that splitting a batch cannot fix say that the endpoint or its credentials are wrong or
 * busy, not that an entry is bad: they retry like a 5xx instead of setting data aside. Every other
 * 4xx is a `SinkRejected`, including 413 (too large), which splitting does fix (`tooLarge`).
 */
const RETRIED_CLIENT_ERRORS = new Set([401, 403, 404, 408, 429])

/** Why a payload could not be encoded: the Schema's own message where there is one. */
const encodingFailure = (error: HttpBody.HttpBodyError): string =>
  error.reason._tag === "SchemaError" ? error.reason.error.message : String(error.reason.error)

const classify = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.gen(function* () {
    const status = response.status
    if (status >= 200 && status < 300) return
    const body = yield* response.text.pipe(
      Effect.map((text) => text.slice(0, BODY_EXCERPT)),
      Effect.orElseSucceed(() => ""),
    )
    if (status >= 500 || RETRIED_CLIENT_ERRORS.has(status)) {
      const header = response.headers["retry-after"]
      return yield* new SinkUnavailable({
        reason: body || `HTTP ${status}`,
        status,
        retryAfter:
          header === undefined
            ? undefined
            : Option.getOrUndefined(Option.map(parseRetryAfter(header, new Date()), Duration.seconds)),
      })
    }
    return yield* new SinkRejected({ status, body })
  })

/**
 * One JSON POST per call, its body encoded with `schema` (the exported wire Schemas), classified
 * into success, `SinkUnavailable` or `SinkRejected`.
 */
export const makePoster = <A, I>(
  options: HttpSinkOptions,
  schema: Schema.Schema<A, I>,
): Effect.Effect<(body: A) => Effect.Effect<void, SinkError>, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const url = options.url.toString()
    const timeout = Duration.decode(options.timeout)
    const token = options.bearerToken ?? Effect.succeedNone
    const extraHeaders = options.headers ?? Effect.succeed([])

    const encode = HttpClientRequest.schemaBodyJson(schema)
    return (body: A) =>
      Effect.gen(function* () {
        const bearer = yield* token
        const headers = yield* extraHeaders
        const request = yield* HttpClientRequest.post(url).pipe(
          withHeaders(headers),
          HttpClientRequest.acceptJson,
          Option.isSome(bearer) ? HttpClientRequest.bearerToken(bearer.value) : (request) => request,
          (request) => encode(request, body),
        )
        const response = yield* client.execute(request)
        yield* classify(response)
      }).pipe(
        Effect.scoped,
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new SinkUnavailable({ reason: `no answer within ${Duration.format(timeout)}` }),
        }),
        Effect.catchTag("RequestError", "ResponseError", (error) =>
          Effect.fail(
            error.cause instanceof WriteFenceClosed
              ? notLeader
              : new SinkUnavailable({ reason: describeFailure(error), cause: error }),
          ),
        ),
        // Sending it could only draw a 400: refused here, so the batch is split like a 400's.
        Effect.catchTag("HttpBodyError", (error) =>
          Effect.fail(
            new SinkRejected({
              status: 0,
              body: `not sent: ${encodingFailure(error)}`.slice(0, BODY_EXCERPT),
            }),
          ),
        ),
      )
  })

export const make = (
  options: HttpSinkOptions,
): Effect.Effect<InstanceSinkService, never, HttpClient.HttpClient> =>
  Effect.map(makePoster(options, SyncPayload), (post) => InstanceSink.make(post))

/** Needs an `HttpClient`, e.g. `NodeHttpClient.layerUndici`. */
export const layer = (options: HttpSinkOptions): Layer.Layer<InstanceSink, never, HttpClient.HttpClient> =>
  Layer.effect(InstanceSink, make(options))
