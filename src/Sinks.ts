/**
 * Chooses the sink the configuration asks for: the HTTP sender to `INSTANCES_ENDPOINT`, or the
 * dry-run printer when there is no endpoint or `DRY_RUN=true`.
 */
import { readFile } from "node:fs/promises"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer, Option, Redacted } from "effect"
import { isDryRun, SyncConfig } from "./Config.js"
import * as DryRunSink from "./DryRunSink.js"
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

export const layerFromConfig: Layer.Layer<InstanceSink, never, SyncConfig> = Layer.unwrapEffect(
  Effect.map(SyncConfig, (config) =>
    isDryRun(config) || Option.isNone(config.instancesEndpoint)
      ? DryRunSink.layer
      : HttpSink.layer({
          url: config.instancesEndpoint.value,
          timeout: config.sendTimeout,
          bearerToken: Option.match(config.endpointTokenFile, {
            onNone: () => undefined,
            onSome: tokenFromFile,
          }),
        }).pipe(Layer.provide(NodeHttpClient.layerUndici)),
  ),
)
