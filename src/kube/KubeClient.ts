/**
 * Authenticated requests to the Kubernetes API server over `@effect/platform`'s HttpClient.
 * Paths are API paths (`/api/v1/namespaces`); responses are JSON, decoded by a caller-given
 * Schema when there is one; non-2xx answers become `KubeApiError` decoded from the `Status` body.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as HttpMethod from "@effect/platform/HttpMethod"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { resolveAuth } from "./KubeAuth.js"
import { KubeConfigSource } from "./KubeConfigSource.js"
import {
  KubeApiError,
  type KubeConfigError,
  KubeDecodeError,
  type KubeError,
  KubeTransportError,
  type KubeTransportReason,
} from "./KubeError.js"
import type { KubeIdentity } from "./KubeIdentity.js"
import { excerpt, parseStatus, reasonForCode, retryAfterSeconds } from "./KubeStatus.js"
import * as KubeTransport from "./KubeTransport.js"
import { ListPage, MediaType, WatchEvent, type WatchParams, watchQuery } from "./KubeWatch.js"
import * as LineReader from "./LineReader.js"

/** Query parameters; `undefined` values are left out, so optional ones (`continue`) need no branching. */
export type KubeQuery = Readonly<Record<string, string | number | boolean | undefined>>

export interface KubeRequestOptions {
  readonly query?: KubeQuery | undefined
  /** Overrides `Accept: application/json`, e.g. with `MediaType.partialObjectMetadataList`. */
  readonly accept?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Per-request timeout for the whole exchange including the body; default from `KubeClientOptions`. */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface KubeBodyOptions extends KubeRequestOptions {
  /** Default `application/json`; patches need e.g. `application/merge-patch+json`. */
  readonly contentType?: string | undefined
}

export interface KubeRequest extends KubeBodyOptions {
  readonly method: HttpMethod.HttpMethod
  readonly path: string
  readonly body?: unknown
}

export interface WithSchema<A, I, R> {
  readonly schema: Schema.Schema<A, I, R>
}

export interface KubeWatchOptions extends WatchParams {
  readonly accept?: string | undefined
  /** Extra query parameters, merged after the watch parameters. */
  readonly query?: KubeQuery | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

export interface KubeListOptions {
  readonly accept?: string | undefined
  readonly query?: KubeQuery | undefined
  /** Page size (`limit`); the server may return fewer. */
  readonly limit?: number | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/** `status.userInfo` of a SelfSubjectReview: who the server thinks we are. */
export const UserInfo = Schema.Struct({
  username: Schema.optional(Schema.String),
  uid: Schema.optional(Schema.String),
  groups: Schema.optional(Schema.Array(Schema.String)),
  extra: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })),
})
export type UserInfo = typeof UserInfo.Type

const SelfSubjectReview = Schema.Struct({
  status: Schema.Struct({ userInfo: UserInfo }),
})

type Unary = {
  <A, I, R>(path: string, options: KubeRequestOptions & WithSchema<A, I, R>): Effect.Effect<A, KubeError, R>
  (path: string, options?: KubeRequestOptions): Effect.Effect<unknown, KubeError>
}

type WithBody = {
  <A, I, R>(
    path: string,
    body: unknown,
    options: KubeBodyOptions & WithSchema<A, I, R>,
  ): Effect.Effect<A, KubeError, R>
  (path: string, body: unknown, options?: KubeBodyOptions): Effect.Effect<unknown, KubeError>
}

export interface KubeClientShape {
  /** The API server's base URL (no trailing slash). */
  readonly server: string
  /** Who we are according to the kubeconfig (safe to log); `whoAmI` asks the server. */
  readonly identity: KubeIdentity
  readonly request: {
    <A, I, R>(request: KubeRequest & WithSchema<A, I, R>): Effect.Effect<A, KubeError, R>
    (request: KubeRequest): Effect.Effect<unknown, KubeError>
  }
  readonly get: Unary
  readonly post: WithBody
  readonly put: WithBody
  /** Default content type `application/merge-patch+json`. */
  readonly patch: WithBody
  readonly del: Unary
  /**
   * A streaming GET: the response body as lines, without the empty ones. The HTTP request lives
   * exactly as long as the stream: interrupting or finishing it aborts the request. Non-2xx
   * answers fail the stream with `KubeApiError` before any line.
   */
  readonly lines: (path: string, options?: KubeRequestOptions) => Stream.Stream<string, KubeError>
  /**
   * A streaming GET read batch by batch (see `LineReader`): what a long-lived watch uses, because
   * it costs no fiber and no Stream while it waits. The request lives as long as the scope; a body
   * silent for `idleTimeout` fails the next read with `"idle"`. Non-2xx answers fail with
   * `KubeApiError` (after one retry with fresh credentials on 401).
   */
  readonly openLines: (
    path: string,
    options?: KubeRequestOptions & { readonly idleTimeout?: Duration.DurationInput },
  ) => Effect.Effect<LineReader.LineReader, KubeError, Scope.Scope>
  /**
   * A WATCH (`watch=1` added): one `WatchEvent` per line. `ERROR` events are items, not failures,
   * so that the caller decides (see `KubeApiError.fromWatchEvent`). Ends when the server ends it
   * (e.g. after `timeoutSeconds`).
   */
  readonly watch: (path: string, options?: KubeWatchOptions) => Stream.Stream<WatchEvent, KubeError>
  /**
   * A paginated LIST (`limit`/`continue`), one element per page. A `410 Expired` continue token
   * fails the stream (`isGone`): the caller must list again from the start.
   */
  readonly listPages: (path: string, options?: KubeListOptions) => Stream.Stream<ListPage, KubeError>
  /** Asks the server who we are (SelfSubjectReview, authentication.k8s.io/v1). */
  readonly whoAmI: Effect.Effect<UserInfo, KubeError>
  /** Forgets cached credentials so that the next request runs the authenticators again. */
  readonly refreshCredentials: Effect.Effect<void>
}

export interface KubeClientOptions extends KubeTransport.KubeTransportOptions {
  /** Timeout of non-streaming requests (whole exchange). Default 60 s. */
  readonly requestTimeout?: Duration.DurationInput
  /**
   * How long resolved credentials are reused before the authenticators run again (they keep
   * their own caches: a token file is re-read after 60 s, an exec credential until it expires).
   * A 401 also forces a refresh. Default 10 s.
   */
  readonly credentialsTtl?: Duration.DurationInput
  /** Default `k8s-vectordb-sync`; shows in the API server's audit log. */
  readonly userAgent?: string
}

export class KubeClient extends Context.Tag("k8s-vectordb-sync/KubeClient")<KubeClient, KubeClientShape>() {
  static readonly make = (options?: KubeClientOptions) => make(options)
  /** Needs a `KubeConfigSource`. */
  static readonly layer = (options?: KubeClientOptions): Layer.Layer<KubeClient, never, KubeConfigSource> =>
    Layer.scoped(KubeClient, make(options))
  /** In-cluster or `KUBECONFIG` / `~/.kube/config`. */
  static readonly layerFromDefault = (
    options?: KubeClientOptions,
  ): Layer.Layer<KubeClient, KubeConfigError> =>
    KubeClient.layer(options).pipe(Layer.provide(KubeConfigSource.layerFromDefault))
  static readonly layerFromFile = (
    file: string,
    options?: KubeClientOptions,
  ): Layer.Layer<KubeClient, KubeConfigError> =>
    KubeClient.layer(options).pipe(Layer.provide(KubeConfigSource.layerFromFile(file)))
}

interface Transport extends KubeTransport.KubeTransport {
  readonly headers: Readonly<Record<string, string>>
  readonly client: HttpClient.HttpClient
  readonly fallbackClient: HttpClient.HttpClient | undefined
}

const dispatchersOf = (transport: KubeTransport.KubeTransport) =>
  transport.fallback === undefined ? [transport.dispatcher] : [transport.dispatcher, transport.fallback]

const transportReason = (cause: unknown): KubeTransportReason => {
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : ""
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

const causeMessage = (cause: unknown): string => {
  if (cause instanceof Error) {
    const code = "code" in cause && cause.code !== undefined ? ` (${String(cause.code)})` : ""
    return `${cause.message}${code}`
  }
  return String(cause)
}

/** A request that got no answer: the reason read from the cause (refused, reset, TLS, …). */
const fromCause = (
  method: string,
  path: string,
  cause: unknown,
  reason: KubeTransportReason = transportReason(cause),
): KubeTransportError =>
  new KubeTransportError({
    method,
    path,
    reason,
    message: `${method} ${path}: ${reason === "Other" ? "" : `${reason}: `}${causeMessage(cause)}`,
    cause,
  })

const fromHttpClientError = (
  method: string,
  path: string,
  error: HttpClientError.HttpClientError,
): KubeTransportError =>
  error._tag === "RequestError" && error.reason === "InvalidUrl"
    ? fromCause(method, path, error.cause ?? error, "InvalidUrl")
    : fromCause(method, path, error.cause ?? error)

const timeoutError = (method: string, path: string, timeout: Duration.Duration) =>
  new KubeTransportError({
    method,
    path,
    reason: "Timeout",
    message: `${method} ${path}: no complete answer within ${Duration.format(timeout)}`,
  })

/** A failed answer (status, `Retry-After`, body) as the error the server meant. */
const apiErrorOf = (
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
const apiError = (
  method: string,
  path: string,
  response: HttpClientResponse.HttpClientResponse,
): Effect.Effect<KubeApiError> =>
  Effect.flatMap(response.text.pipe(Effect.orElseSucceed(() => "")), (body) =>
    apiErrorOf(method, path, response.status, response.headers["retry-after"], body),
  )

const queryParams = (query: KubeQuery | undefined): Array<[string, string]> => {
  const params: Array<[string, string]> = []
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) params.push([name, String(value)])
  }
  return params
}

const decodeWith =
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

const parseJson = (method: string, path: string, text: string): Effect.Effect<unknown, KubeDecodeError> =>
  text.trim() === ""
    ? Effect.succeed(null)
    : Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (cause) =>
          new KubeDecodeError({
            method,
            path,
            message: `${method} ${path}: response is not JSON: ${excerpt(text, 200)}`,
            cause,
          }),
      })

const make = (
  options?: KubeClientOptions,
): Effect.Effect<KubeClientShape, never, KubeConfigSource | Scope.Scope> =>
  Effect.gen(function* () {
    const source = yield* KubeConfigSource
    const scope = yield* Effect.scope
    const requestTimeout = Duration.decode(options?.requestTimeout ?? "60 seconds")
    const userAgent = options?.userAgent ?? "k8s-vectordb-sync"
    const cluster = source.kubeConfig.getCurrentCluster()

    // One transport per distinct TLS material. A change (rotated client certificate from an exec
    // plugin, new CA) starts a new one; the previous one closes gracefully, so that the watches
    // still using it end on their own time rather than being cut.
    const transports = new Map<string, Transport>()
    yield* Scope.addFinalizer(
      scope,
      Effect.promise(() =>
        Promise.allSettled([...transports.values()].flatMap(dispatchersOf).map((d) => d.destroy())),
      ),
    )
    const transport: Effect.Effect<Transport, KubeConfigError | KubeTransportError> = Effect.gen(
      function* () {
        const auth = yield* resolveAuth(source.kubeConfig)
        const existing = transports.get(auth.transportKey)
        if (existing !== undefined) return { ...existing, headers: auth.headers }
        const made = yield* KubeTransport.make(source.server, auth.tls, {
          ...options,
          proxyUrl: cluster?.proxyUrl,
        }).pipe(Effect.mapError((cause) => fromCause("CONNECT", source.server, cause)))
        yield* Effect.logDebug("API server transport").pipe(
          Effect.annotateLogs({
            protocol: made.negotiated.protocol,
            streamsPerConnection: made.negotiated.streamsPerConnection,
          }),
        )
        for (const [key, retired] of transports) {
          transports.delete(key)
          for (const dispatcher of dispatchersOf(retired)) dispatcher.close().catch(() => undefined)
        }
        const fresh = {
          ...made,
          headers: auth.headers,
          client: NodeHttpClient.makeUndici(made.dispatcher),
          fallbackClient: made.fallback === undefined ? undefined : NodeHttpClient.makeUndici(made.fallback),
        }
        transports.set(auth.transportKey, fresh)
        return fresh
      },
    )
    const [cached, invalidate] = yield* Effect.cachedInvalidateWithTTL(
      transport,
      options?.credentialsTtl ?? "10 seconds",
    )
    // A failed resolution (exec plugin down, token file missing) is not kept: the next request retries it.
    const cachedTransport = Effect.tapError(cached, () => invalidate)

    const buildRequest = (request: KubeRequest, headers: Readonly<Record<string, string>>) => {
      const apiPath = request.path.startsWith("/") ? request.path : `/${request.path}`
      const base = HttpClientRequest.make(request.method)(`${source.server}${apiPath}`).pipe(
        HttpClientRequest.setUrlParams(queryParams(request.query)),
        HttpClientRequest.setHeaders({
          Accept: request.accept ?? MediaType.json,
          "User-Agent": userAgent,
          ...request.headers,
          ...headers,
        }),
      )
      return request.body === undefined
        ? base
        : HttpClientRequest.bodyText(
            base,
            JSON.stringify(request.body),
            request.contentType ?? "application/json",
          )
    }

    // Sends once; on 401 forgets the credentials and sends once more, which is how an expired
    // exec credential or a rotated token is picked up without waiting for the cache to expire.
    const send = (
      request: KubeRequest,
      scoped: boolean,
    ): Effect.Effect<HttpClientResponse.HttpClientResponse, KubeError, Scope.Scope> => {
      const attempt = Effect.gen(function* () {
        const { client, fallbackClient, headers } = yield* cachedTransport
        const execute = (via: HttpClient.HttpClient) =>
          (scoped ? HttpClient.withScope(via) : via).execute(buildRequest(request, headers))
        return yield* execute(client).pipe(
          Effect.catchIf(
            (e) => !scoped && fallbackClient !== undefined && KubeTransport.isGoAway(e.cause),
            () => execute(fallbackClient!),
          ),
          Effect.mapError((e) => fromHttpClientError(request.method, request.path, e)),
        )
      })
      return Effect.gen(function* () {
        const first = yield* attempt
        const response =
          first.status === 401
            ? yield* first.text.pipe(Effect.ignore, Effect.zipRight(invalidate), Effect.zipRight(attempt))
            : first
        if (response.status >= 200 && response.status < 300) return response
        return yield* Effect.flip(apiError(request.method, request.path, response))
      })
    }

    const requestJson = (req: KubeRequest): Effect.Effect<unknown, KubeError> => {
      const timeout = req.timeout === undefined ? requestTimeout : Duration.decode(req.timeout)
      return Effect.scoped(
        send(req, false).pipe(
          Effect.flatMap((response) =>
            response.text.pipe(Effect.mapError((e) => fromHttpClientError(req.method, req.path, e))),
          ),
          Effect.flatMap((text) => parseJson(req.method, req.path, text)),
        ),
      ).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => timeoutError(req.method, req.path, timeout),
        }),
        Effect.withSpan("KubeClient.request", { attributes: { method: req.method, path: req.path } }),
      )
    }
    const requestAs = <A, I, R>(
      req: KubeRequest,
      schema: Schema.Schema<A, I, R>,
    ): Effect.Effect<A, KubeError, R> =>
      Effect.flatMap(requestJson(req), decodeWith(schema, req.method, req.path))
    const request = (req: KubeRequest & { readonly schema?: Schema.Schema<unknown, unknown, unknown> }) =>
      req.schema === undefined ? requestJson(req) : requestAs(req, req.schema)

    const unary =
      (method: HttpMethod.HttpMethod) =>
      (
        path: string,
        opts?: KubeRequestOptions & { readonly schema?: Schema.Schema<unknown, unknown, unknown> },
      ) =>
        request({ ...opts, method, path })
    const withBody =
      (method: HttpMethod.HttpMethod, contentType = "application/json") =>
      (
        path: string,
        body: unknown,
        opts?: KubeBodyOptions & { readonly schema?: Schema.Schema<unknown, unknown, unknown> },
      ) =>
        request({ ...opts, contentType: opts?.contentType ?? contentType, method, path, body })

    const lines = (path: string, opts?: KubeRequestOptions): Stream.Stream<string, KubeError> =>
      Stream.unwrapScoped(
        send({ ...opts, method: "GET", path }, true).pipe(
          Effect.map((response) =>
            response.stream.pipe(
              Stream.mapError((e) => fromHttpClientError("GET", path, e)),
              Stream.decodeText(),
              Stream.splitLines,
              Stream.filter((line) => line.trim() !== ""),
            ),
          ),
        ),
      )

    const serverUrl = new URL(source.server)
    const basePath = serverUrl.pathname.replace(/\/$/, "")
    /** One streaming GET straight on the transport's dispatcher: its head, then lines to read. */
    const openOnce = (path: string, opts: KubeRequestOptions | undefined, idleMs: number) =>
      Effect.gen(function* () {
        const { dispatcher, headers } = yield* cachedTransport
        const query = new URLSearchParams(queryParams(opts?.query)).toString()
        const apiPath = path.startsWith("/") ? path : `/${path}`
        const opened = yield* LineReader.open(
          dispatcher,
          {
            origin: serverUrl.origin,
            path: `${basePath}${apiPath}${query === "" ? "" : `?${query}`}`,
            method: "GET",
            headers: {
              Accept: opts?.accept ?? MediaType.json,
              "User-Agent": userAgent,
              ...opts?.headers,
              ...headers,
            },
            headersTimeout: Duration.toMillis(requestTimeout),
            bodyTimeout: 0,
          },
          idleMs,
        ).pipe(Effect.mapError((cause) => fromCause("GET", path, cause)))
        yield* Effect.addFinalizer(() => Effect.sync(opened.reader.abort))
        return opened
      })

    const openLines = (
      path: string,
      opts?: KubeRequestOptions & { readonly idleTimeout?: Duration.DurationInput },
    ): Effect.Effect<LineReader.LineReader, KubeError, Scope.Scope> =>
      Effect.gen(function* () {
        const idle = opts?.idleTimeout === undefined ? 0 : Duration.toMillis(opts.idleTimeout)
        let opened = yield* openOnce(path, opts, idle)
        if (opened.head.status === 401) {
          opened.reader.abort()
          yield* invalidate
          opened = yield* openOnce(path, opts, idle)
        }
        const { head, reader, errorBody } = opened
        if (head.status >= 200 && head.status < 300) return reader
        const retryAfter = head.headers["retry-after"]
        return yield* Effect.flip(
          Effect.flatMap(errorBody, (body) =>
            apiErrorOf(
              "GET",
              path,
              head.status,
              typeof retryAfter === "string" ? retryAfter : retryAfter?.[0],
              body,
            ),
          ),
        )
      })

    const watch = (path: string, opts?: KubeWatchOptions): Stream.Stream<WatchEvent, KubeError> => {
      const decode = Schema.decodeUnknown(WatchEvent)
      return lines(path, {
        query: { ...watchQuery(opts ?? {}), ...opts?.query },
        accept: opts?.accept,
        headers: opts?.headers,
      }).pipe(
        Stream.mapEffect((line) =>
          parseJson("GET", path, line).pipe(
            Effect.flatMap((json) =>
              decode(json).pipe(
                Effect.mapError(
                  (error) =>
                    new KubeDecodeError({
                      method: "GET",
                      path,
                      message: `GET ${path}: not a watch event: ${excerpt(line, 200)}`,
                      cause: error,
                    }),
                ),
              ),
            ),
          ),
        ),
      )
    }

    const listPages = (path: string, opts?: KubeListOptions): Stream.Stream<ListPage, KubeError> =>
      Stream.paginateEffect(undefined as string | undefined, (continueToken) =>
        requestAs(
          {
            method: "GET",
            path,
            accept: opts?.accept,
            timeout: opts?.timeout,
            query: { ...opts?.query, limit: opts?.limit, continue: continueToken },
          },
          ListPage,
        ).pipe(
          Effect.map((page) => {
            const next = page.metadata.continue
            return [page, next ? Option.some(next) : Option.none()] as const
          }),
        ),
      )

    const whoAmI = requestAs(
      {
        method: "POST",
        path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
      },
      SelfSubjectReview,
    ).pipe(Effect.map((review) => review.status.userInfo))

    return KubeClient.of({
      server: source.server,
      identity: source.identity,
      request: request as KubeClientShape["request"],
      get: unary("GET") as Unary,
      post: withBody("POST") as WithBody,
      put: withBody("PUT") as WithBody,
      patch: withBody("PATCH", "application/merge-patch+json") as WithBody,
      del: unary("DELETE") as Unary,
      lines,
      openLines,
      watch,
      listPages,
      whoAmI,
      refreshCredentials: invalidate,
    })
  })
