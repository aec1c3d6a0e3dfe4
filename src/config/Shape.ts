/**
 * The typed configuration every module reads (`SyncConfigShape`), with the values derived from
 * it. Config.ts reads the variables into it and provides it as the `SyncConfig` service.
 */
import { type Duration, type LogLevel, Option } from "effect"
import type { BindAddress, LogFormat } from "./Parse.js"

export interface LeaderElectionConfig {
  readonly enabled: boolean
  /** Name of the `coordination.k8s.io/v1` Lease. */
  readonly id: string
  /** None: the namespace the pod runs in (resolved by the leader-election code). */
  readonly namespace: Option.Option<string>
  readonly leaseDuration: Duration.Duration
  readonly renewDeadline: Duration.Duration
  readonly retryPeriod: Duration.Duration
}

/** How `POST /api/v1/resync` authenticates its callers (`RESYNC_AUTH`, `RESYNC_TOKEN_FILE`). */
export type ResyncAuthConfig =
  | { readonly mode: "kubernetes" }
  /** The token is read from the file on every request, never here. */
  | { readonly mode: "token"; readonly tokenFile: string }
  | { readonly mode: "none" }

/** The checkpoint of the ids the receiver holds (`src/checkpoint/`). */
export interface CheckpointConfig {
  readonly enabled: boolean
  /** Name of the first ConfigMap; further parts add `-1`, `-2`, …. */
  readonly name: string
  /** Most compressed bytes in one ConfigMap. */
  readonly partBytes: number
}

export interface SyncConfigShape {
  /** Where instance payloads are POSTed. None: the dry-run sink. */
  readonly instancesEndpoint: Option.Option<URL>
  /** Where CRD capability payloads are POSTed. None: the capabilities pipeline is off. */
  readonly capabilitiesEndpoint: Option.Option<URL>
  /** Print payloads instead of sending them, even when an endpoint is set. See {@link isDryRun}. */
  readonly dryRun: boolean
  readonly debounceWindow: Duration.Duration
  readonly debounceMaxWait: Duration.Duration
  readonly batchFlushInterval: Duration.Duration
  readonly batchMaxSize: number
  /** Most bytes in one request body. */
  readonly batchMaxBytes: number
  /** None: periodic resync disabled (`RESYNC_INTERVAL_MIN=0`). */
  readonly resyncInterval: Option.Option<Duration.Duration>
  readonly shutdownTimeout: Duration.Duration
  /** Per-request timeout of the HTTP sender. */
  readonly sendTimeout: Duration.Duration
  readonly retryInitialBackoff: Duration.Duration
  readonly retryMaxBackoff: Duration.Duration
  /** Allowlist; empty means every type. When non-empty it wins over `excludeResourceTypes`. */
  readonly watchResourceTypes: ReadonlyArray<string>
  /** Blocklist, applied only when `watchResourceTypes` is empty. */
  readonly excludeResourceTypes: ReadonlyArray<string>
  /** Namespaces (names or globs) whose objects are synced; empty: every namespace. */
  readonly watchNamespaces: ReadonlyArray<string>
  /** Namespaces (names or globs) whose objects are not synced. */
  readonly excludeNamespaces: ReadonlyArray<string>
  /** Applied by the API server to every watch. */
  readonly labelSelector: Option.Option<string>
  readonly apiBindAddress: BindAddress
  readonly healthProbeBindAddress: BindAddress
  readonly resyncAuth: ResyncAuthConfig
  /** Least time between two resyncs started on request; zero: no limit. */
  readonly resyncMinInterval: Duration.Duration
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: LogFormat
  /** Path of a file holding the receiver's bearer token (read and re-read by the sender, never here). */
  readonly endpointTokenFile: Option.Option<string>
  /** Path of a PEM CA bundle for an HTTPS receiver. */
  readonly endpointCaFile: Option.Option<string>
  readonly leaderElection: LeaderElectionConfig
  readonly discoveryInterval: Duration.Duration
  /** Most LIST requests in flight at once (start-up, relists, resync). */
  readonly listConcurrency: number
  /** Start each watch with a streaming initial list where the API server offers it. */
  readonly watchList: boolean
  /** Most HTTP/2 connections to the API server; each carries up to the server's stream limit. */
  readonly apiServerMaxConnections: number
  /** Annotation keys and globs forwarded; None: all but the tools' bookkeeping prefixes. */
  readonly annotationKeys: Option.Option<ReadonlyArray<string>>
  /** Label keys and globs forwarded; None: every label. */
  readonly labelKeys: Option.Option<ReadonlyArray<string>>
  /** Path of a file of extra request headers for the receivers (read and re-read by the sender). */
  readonly endpointHeadersFile: Option.Option<string>
  readonly checkpoint: CheckpointConfig
  /** Non-fatal remarks found while reading (e.g. an ignored variable); log them once logging is up. */
  readonly warnings: ReadonlyArray<string>
}

/** True when payloads go to stdout: `DRY_RUN=true`, or no instances endpoint configured. */
export const isDryRun = (config: SyncConfigShape): boolean =>
  config.dryRun || Option.isNone(config.instancesEndpoint)
