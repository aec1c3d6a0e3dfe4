/**
 * The Kubernetes API as the controller uses it: JSON GET, POST, PUT and DELETE decoded by the caller's
 * Schema, and streaming GETs read line by line (watches). Paths are API paths
 * (`/api/v1/namespaces`); non-2xx answers fail with `KubeApiError` decoded from the `Status` body.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { KubeConfigSource } from "./KubeConfigSource.js"
import * as KubeConnection from "./KubeConnection.js"
import type { KubeConfigError, KubeError } from "./KubeError.js"
import { decodeWith, fromHttpClientError, parseJson, timeoutError } from "./KubeFailure.js"
import type { KubeIdentity } from "./KubeIdentity.js"
import type * as KubeTransport from "./KubeTransport.js"
import type * as LineReader from "./LineReader.js"

export type { KubeQuery } from "./KubeConnection.js"

export interface KubeRequestOptions {
  readonly query?: KubeConnection.KubeQuery | undefined
  /** Overrides `Accept: application/json`, e.g. with `MediaType.partialObjectMetadataList`. */
  readonly accept?: string | undefined
  /** Per-request timeout for the whole exchange including the body; default from `KubeClientOptions`. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** The Schema a JSON answer is decoded with (`Schema.Unknown` to take it as it is). */
export interface WithSchema<A, I, R> {
  readonly schema: Schema.Schema<A, I, R>
}

/** A streaming GET has no overall timeout (a watch lasts minutes); its head must come within `requestTimeout`. */
export interface KubeStreamOptions {
  readonly query?: KubeConnection.KubeQuery | undefined
  readonly accept?: string | undefined
  /** A body silent this long fails the next read with `"idle"`. Default: no limit. */
  readonly idleTimeout?: Duration.DurationInput
}

/** A decoded answer and the `ETag` the server gave it, to ask again with (see `revalidate`). */
export interface Validated<A> {
  readonly value: A
  readonly etag: string | undefined
}

export interface KubeClientShape {
  /** The API server's base URL (no trailing slash). */
  readonly server: string
  /** Who we are according to the kubeconfig (safe to log). */
  readonly identity: KubeIdentity
  readonly get: <A, I, R>(
    path: string,
    options: KubeRequestOptions & WithSchema<A, I, R>,
  ) => Effect.Effect<A, KubeError, R>
  /**
   * A GET that revalidates `kept`, an earlier answer: its ETag goes as `If-None-Match`, and when the
   * server answers 304 Not Modified `kept` comes back as it is, with no body to read or decode.
   * Any other answer is decoded and comes back with its own ETag.
   */
  readonly revalidate: <A, I, R>(
    path: string,
    options: KubeRequestOptions & WithSchema<A, I, R> & { readonly kept: Validated<A> | undefined },
  ) => Effect.Effect<Validated<A>, KubeError, R>
  readonly post: <A, I, R>(
    path: string,
    body: unknown,
    options: KubeRequestOptions & WithSchema<A, I, R>,
  ) => Effect.Effect<A, KubeError, R>
  readonly put: <A, I, R>(
    path: string,
    body: unknown,
    options: KubeRequestOptions & WithSchema<A, I, R>,
  ) => Effect.Effect<A, KubeError, R>
  /** The answer (a `Status`, or the object being deleted) is decoded with the caller's Schema. */
  readonly delete: <A, I, R>(
    path: string,
    options: KubeRequestOptions & WithSchema<A, I, R>,
  ) => Effect.Effect<A, KubeError, R>
  /**
   * A streaming GET read batch by batch (see `LineReader`): what a long-lived watch uses, because
   * it costs no fiber and no Stream while it waits. The request lives as long as the scope. Non-2xx
   * answers fail with `KubeApiError` (after one retry with fresh credentials on 401).
   */
  readonly openLines: (
    path: string,
    options?: KubeStreamOptions,
  ) => Effect.Effect<LineReader.LineReader, KubeError, Scope.Scope>
}

export interface KubeClientOptions extends KubeTransport.KubeTransportOptions {
  /** Timeout of non-streaming requests (whole exchange), and of a streaming one's head. Default 60 s. */
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

/** What an exchange answered: a 304 to `If-None-Match` has no body. */
interface Answer {
  readonly notModified: boolean
  readonly text: string
  readonly etag: string | undefined
}

const notModified: Answer = { notModified: true, text: "", etag: undefined }

const make = (
  options?: KubeClientOptions,
): Effect.Effect<KubeClientShape, never, KubeConfigSource | Scope.Scope> =>
  Effect.gen(function* () {
    const source = yield* KubeConfigSource
    const requestTimeout = Duration.decode(options?.requestTimeout ?? "60 seconds")
    const connection = yield* KubeConnection.make(source, {
      ...options,
      headersTimeout: requestTimeout,
      credentialsTtl: options?.credentialsTtl ?? "10 seconds",
      userAgent: options?.userAgent ?? "k8s-vectordb-sync",
    })

    /** One exchange, answered within the timeout: the body's text and ETag (a 304 has no body). */
    const answer = (
      request: KubeConnection.KubeRequest,
      opts: KubeRequestOptions,
    ): Effect.Effect<Answer, KubeError> => {
      const { method, path } = request
      const timeout = opts.timeout === undefined ? requestTimeout : Duration.decode(opts.timeout)
      return Effect.scoped(
        connection.send({ ...request, query: opts.query, accept: opts.accept }).pipe(
          Effect.flatMap((response) =>
            response.status === 304
              ? Effect.succeed(notModified)
              : response.text.pipe(
                  Effect.map((text): Answer => ({ notModified: false, text, etag: response.headers.etag })),
                  Effect.mapError((e) => fromHttpClientError(method, path, e)),
                ),
          ),
        ),
      ).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => timeoutError(method, path, timeout) }),
        Effect.withSpan("KubeClient.request", { attributes: { method, path } }),
      )
    }

    /** The answer's JSON decoded with the caller's Schema. */
    const decoded = <A, I, R>(
      { method, path }: KubeConnection.KubeRequest,
      schema: Schema.Schema<A, I, R>,
      text: string,
    ): Effect.Effect<A, KubeError, R> =>
      Effect.flatMap(parseJson(method, path, text), decodeWith(schema, method, path))

    /** One JSON exchange: sent, answered within the timeout, decoded with the caller's Schema. */
    const exchange = <A, I, R>(
      request: KubeConnection.KubeRequest,
      opts: KubeRequestOptions & WithSchema<A, I, R>,
    ): Effect.Effect<A, KubeError, R> =>
      // Without `ifNoneMatch` a 304 is an error of `send`: the answer here always has a body.
      Effect.flatMap(answer(request, opts), (answered) => decoded(request, opts.schema, answered.text))

    const revalidate = <A, I, R>(
      path: string,
      opts: KubeRequestOptions & WithSchema<A, I, R> & { readonly kept: Validated<A> | undefined },
    ): Effect.Effect<Validated<A>, KubeError, R> => {
      const { kept } = opts
      const request = { method: "GET" as const, path, ifNoneMatch: kept?.etag }
      return Effect.flatMap(answer(request, opts), (answered) =>
        answered.notModified && kept !== undefined
          ? Effect.succeed(kept)
          : Effect.map(decoded(request, opts.schema, answered.text), (value) => ({
              value,
              etag: answered.etag,
            })),
      )
    }

    return KubeClient.of({
      server: source.server,
      identity: source.identity,
      get: (path, opts) => exchange({ method: "GET", path }, opts),
      revalidate,
      post: (path, body, opts) => exchange({ method: "POST", path, body }, opts),
      put: (path, body, opts) => exchange({ method: "PUT", path, body }, opts),
      delete: (path, opts) => exchange({ method: "DELETE", path }, opts),
      openLines: (path, opts) =>
        connection.open(
          { path, query: opts?.query, accept: opts?.accept },
          opts?.idleTimeout === undefined ? 0 : Duration.toMillis(opts.idleTimeout),
        ),
    })
  })
