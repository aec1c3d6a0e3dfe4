/**
 * The controller's configuration as one service, `SyncConfig`: every variable declared in
 * Variables.ts, read once at start through Effect `Config` (see Read.ts for the rules every variable
 * follows), parsed into the typed shape (Shape.ts) and checked across fields.
 */
import {
  Config,
  type ConfigError,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
} from "effect"
import { type ResyncAuthMode, showValue } from "./Parse.js"
import {
  allChecks,
  ConfigValidationError,
  invalid,
  ordered,
  type Read,
  read,
  readAliased,
  value,
} from "./Read.js"
import type { LeaderElectionConfig, ResyncAuthConfig, SyncConfigShape } from "./Shape.js"
import { Variables as V } from "./Variables.js"

// What other modules and library users import from here; the declarations and parsers live beside.
export type { BindAddress, LogFormat, ResyncAuthMode } from "./Parse.js"
export { ConfigValidationError, formatConfigError } from "./Read.js"
export {
  type CheckpointConfig,
  isDryRun,
  type LeaderElectionConfig,
  type ResyncAuthConfig,
  type SyncConfigShape,
} from "./Shape.js"
export {
  type ConfigVariable,
  configReference,
  DEFAULT_EXCLUDE_RESOURCE_TYPES,
  MAX_RESYNC_INTERVAL_MIN,
  Variables,
} from "./Variables.js"

// ---------------------------------------------------------------------------------------------------
// Reading it: one group per cross-field rule, so one bad group does not hide another
// ---------------------------------------------------------------------------------------------------

const toMs = (r: Read<number>) => Duration.millis(r.value)
const millis = (config: Config.Config<number>) => Config.map(config, Duration.millis)

const endpoints = Config.all({
  instancesEndpoint: readAliased(V.INSTANCES_ENDPOINT, "URL", (a, b) => a.href === b.href),
  capabilitiesEndpoint: value(V.CAPABILITIES_ENDPOINT),
})

const debounce = Config.all({
  window: read(V.DEBOUNCE_WINDOW_MS),
  maxWait: read(V.DEBOUNCE_MAX_WAIT_MS),
}).pipe(
  Config.mapOrFail(({ maxWait, window }) =>
    allChecks({ debounceWindow: toMs(window), debounceMaxWait: toMs(maxWait) }, [
      ordered(window, maxWait, false),
    ]),
  ),
)

const retry = Config.all({
  initial: read(V.RETRY_INITIAL_BACKOFF_MS),
  max: read(V.RETRY_MAX_BACKOFF_MS),
}).pipe(
  Config.mapOrFail(({ initial, max }) =>
    allChecks({ retryInitialBackoff: toMs(initial), retryMaxBackoff: toMs(max) }, [
      ordered(initial, max, false),
    ]),
  ),
)

const resourceTypes = Config.all({
  watch: value(V.WATCH_RESOURCE_TYPES),
  exclude: read(V.EXCLUDE_RESOURCE_TYPES),
}).pipe(
  Config.map(({ exclude, watch }) => {
    const watchResourceTypes = Option.getOrElse(watch, (): ReadonlyArray<string> => [])
    return {
      watchResourceTypes,
      excludeResourceTypes: exclude.value,
      warnings:
        watchResourceTypes.length > 0 && exclude.explicit && exclude.value.length > 0
          ? [
              `${V.EXCLUDE_RESOURCE_TYPES.name} is ignored because ${V.WATCH_RESOURCE_TYPES.name} is set: ` +
                "the allowlist wins (as in the Go controller)",
            ]
          : [],
    }
  }),
)

const bindAddresses = Config.all({
  api: read(V.API_BIND_ADDRESS),
  health: read(V.HEALTH_PROBE_BIND_ADDRESS),
}).pipe(
  Config.mapOrFail(({ api, health }) => {
    // Two servers cannot listen on one port when their hosts overlap (an empty host is every interface).
    const clash =
      api.value.port !== 0 &&
      api.value.port === health.value.port &&
      (api.value.host === undefined ||
        health.value.host === undefined ||
        api.value.host === health.value.host)
    if (!clash) return Either.right({ apiBindAddress: api.value, healthProbeBindAddress: health.value })
    const [named, other] = health.explicit || !api.explicit ? [health, api] : [api, health]
    return Either.left(
      invalid(named.name, named.text, `a port different from ${other.name} (${showValue(other.text)})`),
    )
  }),
)

// Unset, the mode follows from the token file: a file names a token; without one, the cluster's own
// credentials are the only ones a caller can bring, so the endpoint is never open by default.
const resyncAuth = Config.all({
  mode: read(V.RESYNC_AUTH),
  tokenFile: read(V.RESYNC_TOKEN_FILE),
}).pipe(
  Config.mapOrFail(({ mode, tokenFile }): Either.Either<ResyncAuthConfig, ConfigError.ConfigError> => {
    const chosen: ResyncAuthMode = Option.getOrElse(mode.value, () =>
      Option.isSome(tokenFile.value) ? "token" : "kubernetes",
    )
    if (chosen === "token")
      return Option.match(tokenFile.value, {
        onNone: () =>
          Either.left(invalid(mode.name, mode.text, `kubernetes or none when ${tokenFile.name} is unset`)),
        onSome: (file) => Either.right({ mode: "token", tokenFile: file }),
      })
    if (Option.isSome(tokenFile.value))
      return Either.left(invalid(tokenFile.name, tokenFile.text, `no value when ${mode.name}=${chosen}`))
    return Either.right({ mode: chosen })
  }),
)

const leaderElection = Config.all({
  enabled: value(V.LEADER_ELECTION),
  id: value(V.LEADER_ELECTION_ID),
  namespace: value(V.LEADER_ELECTION_NAMESPACE),
  lease: read(V.LEADER_ELECTION_LEASE_DURATION_MS),
  renew: read(V.LEADER_ELECTION_RENEW_DEADLINE_MS),
  retry: read(V.LEADER_ELECTION_RETRY_PERIOD_MS),
}).pipe(
  Config.mapOrFail(({ enabled, id, lease, namespace, renew, retry }) =>
    allChecks(
      {
        enabled,
        id,
        namespace,
        leaseDuration: toMs(lease),
        renewDeadline: toMs(renew),
        retryPeriod: toMs(retry),
      } satisfies LeaderElectionConfig,
      [ordered(renew, lease, true), ordered(retry, renew, true)],
    ),
  ),
)

/** The whole configuration, read from the current `ConfigProvider` (the environment by default). */
export const syncConfig: Config.Config<SyncConfigShape> = Config.all({
  endpoints,
  dryRun: value(V.DRY_RUN),
  debounce,
  batchFlushInterval: millis(value(V.BATCH_FLUSH_INTERVAL_MS)),
  batchMaxSize: value(V.BATCH_MAX_SIZE),
  batchMaxBytes: value(V.BATCH_MAX_BYTES),
  resyncMinutes: value(V.RESYNC_INTERVAL_MIN),
  shutdownTimeout: millis(value(V.SHUTDOWN_TIMEOUT_MS)),
  sendTimeout: millis(value(V.SEND_TIMEOUT_MS)),
  retry,
  resourceTypes,
  namespaces: Config.all({
    watchNamespaces: value(V.WATCH_NAMESPACES),
    excludeNamespaces: value(V.EXCLUDE_NAMESPACES),
  }),
  labelSelector: value(V.LABEL_SELECTOR),
  bindAddresses,
  resyncAuth,
  resyncMinInterval: millis(value(V.RESYNC_MIN_INTERVAL_MS)),
  logLevel: value(V.LOG_LEVEL),
  logFormat: value(V.LOG_FORMAT),
  endpointTokenFile: value(V.ENDPOINT_TOKEN_FILE),
  endpointCaFile: value(V.ENDPOINT_CA_FILE),
  leaderElection,
  discoveryInterval: millis(value(V.DISCOVERY_INTERVAL_MS)),
  listConcurrency: value(V.LIST_CONCURRENCY),
  watchList: value(V.WATCH_LIST),
  apiServerMaxConnections: value(V.API_SERVER_MAX_CONNECTIONS),
  annotationKeys: value(V.ANNOTATION_KEYS),
  labelKeys: value(V.LABEL_KEYS),
  endpointHeadersFile: value(V.ENDPOINT_HEADERS_FILE),
  checkpoint: Config.all({
    enabled: value(V.CHECKPOINT),
    name: value(V.CHECKPOINT_NAME),
    partBytes: value(V.CHECKPOINT_PART_BYTES),
  }),
}).pipe(
  Config.map(
    ({
      bindAddresses,
      debounce,
      endpoints,
      namespaces,
      resourceTypes,
      resyncMinutes,
      retry,
      ...rest
    }): SyncConfigShape => ({
      ...rest,
      ...endpoints,
      ...debounce,
      ...retry,
      ...bindAddresses,
      resyncInterval: resyncMinutes === 0 ? Option.none() : Option.some(Duration.minutes(resyncMinutes)),
      ...resourceTypes,
      watchNamespaces: Option.getOrElse(namespaces.watchNamespaces, () => []),
      excludeNamespaces: Option.getOrElse(namespaces.excludeNamespaces, () => []),
    }),
  ),
)

// ---------------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------------

/** Reads and validates the configuration from the current `ConfigProvider`. */
export const loadSyncConfig: Effect.Effect<SyncConfigShape, ConfigValidationError> = Effect.mapError(
  syncConfig,
  ConfigValidationError.fromConfigError,
)

/** Reads the configuration from a plain map of environment variables (`undefined` values are unset). */
export const syncConfigFromEnv = (
  env: Readonly<Record<string, string | undefined>>,
): Effect.Effect<SyncConfigShape, ConfigValidationError> =>
  Effect.withConfigProvider(
    loadSyncConfig,
    ConfigProvider.fromMap(
      new Map(Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const]))),
    ),
  )

/** Every default, i.e. the configuration of an empty environment. */
export const defaultSyncConfig: SyncConfigShape = Effect.runSync(syncConfigFromEnv({}))

export class SyncConfig extends Context.Tag("k8s-vectordb-sync/SyncConfig")<SyncConfig, SyncConfigShape>() {
  /** From the current ConfigProvider (the process environment unless replaced). */
  static readonly layer: Layer.Layer<SyncConfig, ConfigValidationError> = Layer.effect(this, loadSyncConfig)

  /** From environment-style strings, validated exactly like the process environment. */
  static readonly layerFromEnv = (
    env: Readonly<Record<string, string | undefined>>,
  ): Layer.Layer<SyncConfig, ConfigValidationError> => Layer.effect(this, syncConfigFromEnv(env))

  /** The defaults with typed overrides, for library users and tests; not validated. */
  static readonly layerFrom = (overrides: Partial<SyncConfigShape> = {}): Layer.Layer<SyncConfig> =>
    Layer.succeed(this, SyncConfig.make(overrides))

  static readonly make = (overrides: Partial<SyncConfigShape> = {}): SyncConfigShape => ({
    ...defaultSyncConfig,
    ...overrides,
  })
}
