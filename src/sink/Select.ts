/**
 * Chooses the sink the configuration asks for: the HTTP sender to `INSTANCES_ENDPOINT`, or the
 * dry-run printer when there is no endpoint or `DRY_RUN=true`.
 */
import { readFile } from "node:fs/promises"
import type * as HttpClient from "@effect/platform/HttpClient"
import { NodeHttpClient } from "@effect/platform-node"
import { Data, Effect, Layer, Option, Redacted } from "effect"
import { Agent } from "undici"
import { isDryRun, SyncConfig, type SyncConfigShape } from "../config/Config.js"
import { fence, WriteFence } from "../http/WriteFence.js"
import * as DryRunSink from "./DryRunSink.js"
import * as HeaderFile from "./HeaderFile.js"
import * as HttpSink from "./HttpSink.js"
import type { InstanceSink } from "./Sink.js"

/**
 * Read before every request: a Secret mounted as a file changes in place when it is rotated, and
 * a missing or unreadable file sends no token rather than stopping delivery. The token itself is
 * wrapped in `Redacted` so that it never reaches a log.
 */
export const tokenFromFile = (path: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>> =>
  Effect.tryPromise(() => readFile(path, "utf8")).pipe(
    Effect.map((text) => text.trim()),
    Effect.map((token) => (token === "" ? Option.none() : Option.some(Redacted.make(token)))),
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logWarning("cannot read the receiver token file; sending without a token").pipe(
          Effect.annotateLogs({ file: path, error: String(error.error) }),
        ),
        Option.none(),
      ),
    ),
  )

/** `ENDPOINT_CA_FILE` could not be read: the receiver could never be trusted, so start-up stops. */
export class ReceiverCaError extends Data.TaggedError("ReceiverCaError")<{
  readonly file: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `ENDPOINT_CA_FILE: cannot read "${this.file}": ${String(this.cause)}`
  }
}

/**
 * The HTTP client for the receivers. With a CA bundle, TLS trusts exactly that bundle (a private
 * CA, like `curl --cacert`); without one, the system's roots. Where a `WriteFence` is in the
 * context (a leader elector), every request passes it at the moment it is written.
 */
export const httpClientLayer = (
  caFile: Option.Option<string>,
): Layer.Layer<HttpClient.HttpClient, ReceiverCaError> =>
  NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
    Layer.provide(
      Layer.scoped(
        NodeHttpClient.Dispatcher,
        Effect.gen(function* () {
          const ca = yield* Effect.transposeOption(
            Option.map(caFile, (file) =>
              Effect.tryPromise({
                try: () => readFile(file),
                catch: (cause) => new ReceiverCaError({ file, cause }),
              }),
            ),
          )
          const agent = yield* Effect.acquireRelease(
            Effect.sync(
              () =>
                new Agent(Option.match(ca, { onNone: () => ({}), onSome: (ca) => ({ connect: { ca } }) })),
            ),
            (agent) => Effect.promise(() => agent.destroy()),
          )
          const mayWrite = yield* Effect.serviceOption(WriteFence)
          return Option.match(mayWrite, { onNone: () => agent, onSome: (mayWrite) => fence(agent, mayWrite) })
        }),
      ),
    ),
  )

/** What can stop the receivers' HTTP client from being set up. */
export type ReceiverSetupError = ReceiverCaError | HeaderFile.HeaderFileError

/**
 * How to POST to one of the receiver's endpoints: timeout, token and extra headers as configured.
 * A headers file that is missing or invalid fails here, at start-up.
 */
export const httpSinkOptions = (
  config: SyncConfigShape,
  url: URL,
): Effect.Effect<HttpSink.HttpSinkOptions, HeaderFile.HeaderFileError> =>
  Effect.map(
    Effect.transposeOption(
      Option.map(config.endpointHeadersFile, (file) =>
        HeaderFile.make(file, { authorization: Option.isNone(config.endpointTokenFile) }),
      ),
    ),
    (headers) => ({
      url,
      timeout: config.sendTimeout,
      bearerToken: Option.match(config.endpointTokenFile, { onNone: () => undefined, onSome: tokenFromFile }),
      headers: Option.getOrUndefined(headers),
    }),
  )

export const layerFromConfig: Layer.Layer<InstanceSink, ReceiverSetupError, SyncConfig> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* SyncConfig
    if (isDryRun(config) || Option.isNone(config.instancesEndpoint)) return DryRunSink.layer
    const options = yield* httpSinkOptions(config, config.instancesEndpoint.value)
    return HttpSink.layer(options).pipe(Layer.provide(httpClientLayer(config.endpointCaFile)))
  }),
)
