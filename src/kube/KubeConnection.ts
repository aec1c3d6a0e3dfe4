/**
 * Sending to the API server with the current credentials. One transport per distinct TLS material;
 * credentials reused for a while and resolved again on 401; a unary request whose HTTP/2
 * connection went away under it sent again over HTTP/1.1. What a request means and how its answer
 * is read belongs to `KubeClient`.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as HttpMethod from "@effect/platform/HttpMethod"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import { resolveAuth } from "./KubeAuth.js"
import type { KubeConfigSourceShape } from "./KubeConfigSource.js"
import type { KubeConfigError, KubeError, KubeTransportError } from "./KubeError.js"
import { apiError, apiErrorOf, fromCause, fromHttpClientError } from "./KubeFailure.js"
import * as KubeTransport from "./KubeTransport.js"
import { MediaType } from "./KubeWatch.js"
import * as LineReader from "./LineReader.js"

/** Query parameters; `undefined` values are left out, so optional ones (`continue`) need no branching. */
export type KubeQuery = Readonly<Record<string, string | number | boolean | undefined>>

export interface KubeRequest {
  readonly method: HttpMethod.HttpMethod
  /** An API path (`/api/v1/namespaces`), relative to the server URL. */
  readonly path: string
  readonly query?: KubeQuery | undefined
  /** Default `application/json`. */
  readonly accept?: string | undefined
  /** Sent as JSON. */
  readonly body?: unknown
  /** `If-None-Match`: a 304 answer is then a response, not an error. */
  readonly ifNoneMatch?: string | undefined
}

/** A streaming request is a GET without a body. */
export type KubeStreamRequest = Omit<KubeRequest, "method" | "body" | "ifNoneMatch">

export interface KubeConnectionOptions extends KubeTransport.KubeTransportOptions {
  /** How long a streaming request may wait for the answer's head. */
  readonly headersTimeout: Duration.Duration
  /** How long resolved credentials are reused before the authenticators run again. */
  readonly credentialsTtl: Duration.DurationInput
  readonly userAgent: string
}

export interface KubeConnection {
  /**
   * Sends once (twice on 401): a 2xx response (or a 304 to `ifNoneMatch`), whose body lives in the
   * scope, or the `KubeApiError` the answer meant.
   */
  readonly send: (
    request: KubeRequest,
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, KubeError, Scope.Scope>
  /** A streaming GET (twice on 401): the 2xx answer's lines, read as long as the scope lives. */
  readonly open: (
    request: KubeStreamRequest,
    idleMs: number,
  ) => Effect.Effect<LineReader.LineReader, KubeError, Scope.Scope>
}

interface Transport extends KubeTransport.KubeTransport {
  readonly headers: Readonly<Record<string, string>>
  readonly client: HttpClient.HttpClient
  readonly fallbackClient: HttpClient.HttpClient | undefined
}

const dispatchersOf = (transport: KubeTransport.KubeTransport) =>
  transport.fallback === undefined ? [transport.dispatcher] : [transport.dispatcher, transport.fallback]

const queryParams = (query: KubeQuery | undefined): Array<[string, string]> => {
  const params: Array<[string, string]> = []
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) params.push([name, String(value)])
  }
  return params
}

const apiPathOf = (path: string) => (path.startsWith("/") ? path : `/${path}`)

export const make = (
  source: KubeConfigSourceShape,
  options: KubeConnectionOptions,
): Effect.Effect<KubeConnection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const cluster = source.kubeConfig.getCurrentCluster()

    // One transport per distinct TLS material. A change (rotated client certificate from an exec
    // plugin, new CA) starts a new one; the previous one closes gracefully, so that the watches
    // still using it end on their own time rather than being cut.
    const transports = new Map<string, Transport>()
    yield* Effect.addFinalizer(() =>
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
    // Credentials reused for `credentialsTtl`. Every request asks, a thousand watches at start-up:
    // a fresh one is read without a lock; only a resolution takes it, so that concurrent requests
    // share one. A failed resolution (exec plugin down, token file missing) is not kept: the next
    // request retries it.
    const ttlMs = Duration.toMillis(options.credentialsTtl)
    const resolving = yield* Effect.makeSemaphore(1)
    let resolved: { readonly transport: Transport; readonly until: number } | undefined
    const freshAt = (now: number) => (resolved !== undefined && now < resolved.until ? resolved : undefined)
    const resolve = resolving.withPermits(1)(
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const fresh = freshAt(now)
        if (fresh !== undefined) return Effect.succeed(fresh.transport)
        return Effect.tap(transport, (made) => {
          resolved = { transport: made, until: now + ttlMs }
        })
      }),
    )
    const cachedTransport = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const fresh = freshAt(now)
      return fresh === undefined ? resolve : Effect.succeed(fresh.transport)
    })
    const invalidate = Effect.sync(() => {
      resolved = undefined
    })

    const headersOf = (request: KubeStreamRequest, auth: Readonly<Record<string, string>>) => ({
      Accept: request.accept ?? MediaType.json,
      "User-Agent": options.userAgent,
      ...auth,
    })

    const buildRequest = (request: KubeRequest, auth: Readonly<Record<string, string>>) => {
      const base = HttpClientRequest.make(request.method)(`${source.server}${apiPathOf(request.path)}`).pipe(
        HttpClientRequest.setUrlParams(queryParams(request.query)),
        HttpClientRequest.setHeaders(headersOf(request, auth)),
        request.ifNoneMatch === undefined
          ? (r) => r
          : HttpClientRequest.setHeader("If-None-Match", request.ifNoneMatch),
      )
      return request.body === undefined
        ? base
        : HttpClientRequest.bodyText(base, JSON.stringify(request.body), "application/json")
    }

    // Sends once; on 401 forgets the credentials and sends once more, which is how an expired
    // exec credential or a rotated token is picked up without waiting for the cache to expire.
    const send = (request: KubeRequest) => {
      const attempt = Effect.gen(function* () {
        const { client, fallbackClient, headers } = yield* cachedTransport
        const execute = (via: HttpClient.HttpClient) => via.execute(buildRequest(request, headers))
        const sent =
          fallbackClient === undefined
            ? execute(client)
            : execute(client).pipe(
                Effect.catchIf(
                  (e) => KubeTransport.isGoAway(e.cause),
                  () => execute(fallbackClient),
                ),
              )
        return yield* Effect.mapError(sent, (e) => fromHttpClientError(request.method, request.path, e))
      })
      return Effect.gen(function* () {
        const first = yield* attempt
        const response =
          first.status === 401
            ? yield* first.text.pipe(Effect.ignore, Effect.zipRight(invalidate), Effect.zipRight(attempt))
            : first
        if (response.status >= 200 && response.status < 300) return response
        if (response.status === 304 && request.ifNoneMatch !== undefined) return response
        return yield* Effect.flip(apiError(request.method, request.path, response))
      })
    }

    const serverUrl = new URL(source.server)
    const basePath = serverUrl.pathname.replace(/\/$/, "")
    /** One streaming GET straight on the transport's dispatcher: its head, then lines to read. */
    const openOnce = (request: KubeStreamRequest, idleMs: number) =>
      Effect.gen(function* () {
        const { dispatcher, headers } = yield* cachedTransport
        const query = new URLSearchParams(queryParams(request.query)).toString()
        const opened = yield* LineReader.open(
          dispatcher,
          {
            origin: serverUrl.origin,
            path: `${basePath}${apiPathOf(request.path)}${query === "" ? "" : `?${query}`}`,
            method: "GET",
            headers: headersOf(request, headers),
            headersTimeout: Duration.toMillis(options.headersTimeout),
            bodyTimeout: 0,
          },
          idleMs,
        ).pipe(Effect.mapError((cause) => fromCause("GET", request.path, cause)))
        // Without the FiberRefs diff of `Effect.addFinalizer`: aborting needs none of them.
        yield* Effect.flatMap(Effect.scope, (scope) =>
          Scope.addFinalizer(scope, Effect.sync(opened.reader.abort)),
        )
        return opened
      })

    const open = (request: KubeStreamRequest, idleMs: number) =>
      Effect.gen(function* () {
        let opened = yield* openOnce(request, idleMs)
        if (opened.head.status === 401) {
          opened.reader.abort()
          yield* invalidate
          opened = yield* openOnce(request, idleMs)
        }
        const { head, reader, errorBody } = opened
        if (head.status >= 200 && head.status < 300) return reader
        const retryAfter = head.headers["retry-after"]
        return yield* Effect.flip(
          Effect.flatMap(errorBody, (body) =>
            apiErrorOf(
              "GET",
              request.path,
              head.status,
              typeof retryAfter === "string" ? retryAfter : retryAfter?.[0],
              body,
            ),
          ),
        )
      })

    return { send, open }
  })
