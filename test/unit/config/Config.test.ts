import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigError, ConfigProvider, Duration, Effect, LogLevel, Option } from "effect"
import {
  ConfigValidationError,
  configReference,
  defaultSyncConfig,
  formatConfigError,
  isDryRun,
  SyncConfig,
  type SyncConfigShape,
  syncConfig,
} from "../../../src/config/Config.js"
import { defaultValue, Variables as V, variables } from "../../../src/config/Variables.js"

type Env = Readonly<Record<string, string>>

const provider = (env: Env) => ConfigProvider.fromMap(new Map(Object.entries(env)))
const load = (env: Env) => Effect.withConfigProvider(syncConfig, provider(env))
/**
 * The formatted lines of a configuration that must fail. An accepted one fails the test with a short
 * message (flipping it would hand a whole configuration to formatConfigError and the reporter).
 */
const problems = (env: Env) =>
  load(env).pipe(
    Effect.matchEffect({
      onFailure: (error) => Effect.succeed(formatConfigError(error)),
      onSuccess: () =>
        Effect.dieMessage(`expected ${JSON.stringify(env)} to be refused, but it was accepted`),
    }),
  )

const ms = (d: Duration.Duration) => Duration.toMillis(d)
const href = (u: Option.Option<URL>) => Option.getOrNull(Option.map(u, (x) => x.href))

/**
 * What an empty environment must give: each field holds its variable's declared default (the
 * declaration in Variables.ts is the only place a default is written), and the variables unset by
 * default are None or empty.
 */
const expectDeclaredDefaults = (c: SyncConfigShape) => {
  const d = defaultValue
  for (const unset of [
    V.INSTANCES_ENDPOINT,
    V.CAPABILITIES_ENDPOINT,
    V.WATCH_RESOURCE_TYPES,
    V.ENDPOINT_TOKEN_FILE,
    V.ENDPOINT_CA_FILE,
    V.LEADER_ELECTION_NAMESPACE,
    V.ANNOTATION_KEYS,
    V.LABEL_KEYS,
    V.ENDPOINT_HEADERS_FILE,
    V.RESYNC_AUTH,
    V.RESYNC_TOKEN_FILE,
  ]) {
    expect(unset.default, unset.name).toBeUndefined()
  }
  expect(href(c.instancesEndpoint)).toBeNull()
  expect(href(c.capabilitiesEndpoint)).toBeNull()
  expect(c.dryRun).toBe(d(V.DRY_RUN))
  expect(isDryRun(c)).toBe(true)
  expect(ms(c.debounceWindow)).toBe(d(V.DEBOUNCE_WINDOW_MS))
  expect(ms(c.debounceMaxWait)).toBe(d(V.DEBOUNCE_MAX_WAIT_MS))
  expect(ms(c.batchFlushInterval)).toBe(d(V.BATCH_FLUSH_INTERVAL_MS))
  expect(c.batchMaxSize).toBe(d(V.BATCH_MAX_SIZE))
  expect(c.batchMaxBytes).toBe(d(V.BATCH_MAX_BYTES))
  expect(c.batchMaxBytes).toBeLessThan(5 * 1024 * 1024) // cluster-whisperer's limit
  expect(Option.map(c.resyncInterval, Duration.toMinutes)).toEqual(Option.some(d(V.RESYNC_INTERVAL_MIN)))
  expect(ms(c.shutdownTimeout)).toBe(d(V.SHUTDOWN_TIMEOUT_MS))
  expect(ms(c.sendTimeout)).toBe(d(V.SEND_TIMEOUT_MS))
  expect(ms(c.retryInitialBackoff)).toBe(d(V.RETRY_INITIAL_BACKOFF_MS))
  expect(ms(c.retryMaxBackoff)).toBe(d(V.RETRY_MAX_BACKOFF_MS))
  expect(c.watchResourceTypes).toEqual([])
  expect(c.excludeResourceTypes).toEqual(d(V.EXCLUDE_RESOURCE_TYPES))
  expect(c.excludeResourceTypes.length).toBeGreaterThan(0)
  expect(c.apiBindAddress).toEqual(d(V.API_BIND_ADDRESS))
  expect(c.healthProbeBindAddress).toEqual(d(V.HEALTH_PROBE_BIND_ADDRESS))
  // Never open by default: without a token file, callers are reviewed by the API server.
  expect(c.resyncAuth).toEqual({ mode: "kubernetes" })
  expect(ms(c.resyncMinInterval)).toBe(d(V.RESYNC_MIN_INTERVAL_MS))
  expect(c.logLevel).toBe(d(V.LOG_LEVEL))
  expect(c.logFormat).toBe(d(V.LOG_FORMAT))
  expect(Option.isNone(c.endpointTokenFile)).toBe(true)
  expect(Option.isNone(c.endpointCaFile)).toBe(true)
  expect(c.leaderElection.enabled).toBe(d(V.LEADER_ELECTION))
  expect(c.leaderElection.id).toBe(d(V.LEADER_ELECTION_ID))
  expect(Option.isNone(c.leaderElection.namespace)).toBe(true)
  expect(ms(c.leaderElection.leaseDuration)).toBe(d(V.LEADER_ELECTION_LEASE_DURATION_MS))
  expect(ms(c.leaderElection.renewDeadline)).toBe(d(V.LEADER_ELECTION_RENEW_DEADLINE_MS))
  expect(ms(c.leaderElection.retryPeriod)).toBe(d(V.LEADER_ELECTION_RETRY_PERIOD_MS))
  expect(ms(c.discoveryInterval)).toBe(d(V.DISCOVERY_INTERVAL_MS))
  expect(c.listConcurrency).toBe(d(V.LIST_CONCURRENCY))
  expect(c.watchList).toBe(d(V.WATCH_LIST))
  expect(c.apiServerMaxConnections).toBe(d(V.API_SERVER_MAX_CONNECTIONS))
  expect(Option.isNone(c.annotationKeys)).toBe(true)
  expect(Option.isNone(c.labelKeys)).toBe(true)
  expect(Option.isNone(c.endpointHeadersFile)).toBe(true)
  expect(c.checkpoint).toEqual({
    enabled: d(V.CHECKPOINT),
    name: d(V.CHECKPOINT_NAME),
    partBytes: d(V.CHECKPOINT_PART_BYTES),
  })
  expect(c.warnings).toEqual([])
}

/** A declared default as a number, to build values just above or below it. */
const num = (v: { readonly default: string }) => Number(v.default)

describe("defaults", () => {
  it.effect("an empty environment yields every declared default", () =>
    Effect.gen(function* () {
      expectDeclaredDefaults(yield* load({}))
    }),
  )

  it.effect("setting every declared default explicitly gives the same configuration", () =>
    Effect.gen(function* () {
      const explicit: Record<string, string> = {}
      for (const v of configReference) if (v.default !== undefined) explicit[v.name] = v.default
      expect(Object.keys(explicit).length).toBeGreaterThan(20)
      expectDeclaredDefaults(yield* load(explicit))
      expect(yield* load(explicit)).toEqual(yield* load({}))
    }),
  )

  it("defaultSyncConfig and SyncConfig.make() hold the declared defaults", () => {
    expectDeclaredDefaults(defaultSyncConfig)
    expectDeclaredDefaults(SyncConfig.make())
  })

  it.effect("every variable read is in configReference, and every name in it is read", () =>
    Effect.gen(function* () {
      const read = new Set<string>()
      const recording = ConfigProvider.mapInputPath(provider({}), (name) => {
        read.add(name)
        return name
      })
      yield* Effect.withConfigProvider(syncConfig, recording)
      expect([...read].sort()).toEqual(configReference.map((v) => v.name).sort())
      expect(variables.length).toBeLessThan(configReference.length) // REST_ENDPOINT is an alias
    }),
  )
})

// -------------------------------------------------------------------------------------------------
// One valid value per variable (several for the ones with a grammar)
// -------------------------------------------------------------------------------------------------

const valid: ReadonlyArray<readonly [string, string, (c: SyncConfigShape) => unknown, unknown]> = [
  [
    "INSTANCES_ENDPOINT",
    "http://receiver:3000/api/v1/instances/sync",
    (c) => href(c.instancesEndpoint),
    "http://receiver:3000/api/v1/instances/sync",
  ],
  [
    "INSTANCES_ENDPOINT",
    "https://receiver.example/sync",
    (c) => href(c.instancesEndpoint),
    "https://receiver.example/sync",
  ],
  ["REST_ENDPOINT", "http://legacy:3000/sync", (c) => href(c.instancesEndpoint), "http://legacy:3000/sync"],
  [
    "CAPABILITIES_ENDPOINT",
    "http://receiver:3000/api/v1/capabilities/scan",
    (c) => href(c.capabilitiesEndpoint),
    "http://receiver:3000/api/v1/capabilities/scan",
  ],
  ["DRY_RUN", "true", (c) => c.dryRun, true],
  ["DRY_RUN", "1", (c) => c.dryRun, true],
  ["DRY_RUN", "FALSE", (c) => c.dryRun, false],
  ["DRY_RUN", "0", (c) => c.dryRun, false],
  ["DEBOUNCE_WINDOW_MS", "0", (c) => ms(c.debounceWindow), 0],
  ["DEBOUNCE_WINDOW_MS", "2500", (c) => ms(c.debounceWindow), 2500],
  ["DEBOUNCE_MAX_WAIT_MS", "120000", (c) => ms(c.debounceMaxWait), 120_000],
  ["BATCH_FLUSH_INTERVAL_MS", "0", (c) => ms(c.batchFlushInterval), 0],
  ["BATCH_FLUSH_INTERVAL_MS", "750", (c) => ms(c.batchFlushInterval), 750],
  ["BATCH_MAX_SIZE", "1", (c) => c.batchMaxSize, 1],
  ["BATCH_MAX_SIZE", "10000", (c) => c.batchMaxSize, 10_000],
  ["BATCH_MAX_BYTES", "1024", (c) => c.batchMaxBytes, 1024],
  ["BATCH_MAX_BYTES", "104857600", (c) => c.batchMaxBytes, 104_857_600],
  ["RESYNC_INTERVAL_MIN", "0", (c) => Option.isNone(c.resyncInterval), true],
  ["RESYNC_INTERVAL_MIN", "30", (c) => Option.map(c.resyncInterval, ms), Option.some(1_800_000)],
  [
    "RESYNC_INTERVAL_MIN",
    "35791",
    (c) => Option.map(c.resyncInterval, Duration.toMinutes),
    Option.some(35_791),
  ],
  ["SHUTDOWN_TIMEOUT_MS", "0", (c) => ms(c.shutdownTimeout), 0],
  ["SHUTDOWN_TIMEOUT_MS", "25000", (c) => ms(c.shutdownTimeout), 25_000],
  ["SEND_TIMEOUT_MS", "1", (c) => ms(c.sendTimeout), 1],
  ["SEND_TIMEOUT_MS", "5000", (c) => ms(c.sendTimeout), 5_000],
  ["RETRY_INITIAL_BACKOFF_MS", "250", (c) => ms(c.retryInitialBackoff), 250],
  ["RETRY_MAX_BACKOFF_MS", "60000", (c) => ms(c.retryMaxBackoff), 60_000],
  [
    "WATCH_RESOURCE_TYPES",
    "deployments, certificates.cert-manager.io,,pods",
    (c) => c.watchResourceTypes,
    ["deployments", "certificates.cert-manager.io", "pods"],
  ],
  [
    "WATCH_RESOURCE_TYPES",
    "Deployments.Apps,deployments.apps",
    (c) => c.watchResourceTypes,
    ["deployments.apps"],
  ],
  [
    "EXCLUDE_RESOURCE_TYPES",
    "events,events.events.k8s.io",
    (c) => c.excludeResourceTypes,
    ["events", "events.events.k8s.io"],
  ],
  ["EXCLUDE_RESOURCE_TYPES", ",", (c) => c.excludeResourceTypes, []],
  ["API_BIND_ADDRESS", ":9090", (c) => c.apiBindAddress, { host: undefined, port: 9090 }],
  ["API_BIND_ADDRESS", "127.0.0.1:8082", (c) => c.apiBindAddress, { host: "127.0.0.1", port: 8082 }],
  ["API_BIND_ADDRESS", "[::1]:8082", (c) => c.apiBindAddress, { host: "::1", port: 8082 }],
  ["API_BIND_ADDRESS", "[::]:0", (c) => c.apiBindAddress, { host: "::", port: 0 }],
  ["API_BIND_ADDRESS", "localhost:65535", (c) => c.apiBindAddress, { host: "localhost", port: 65_535 }],
  [
    "HEALTH_PROBE_BIND_ADDRESS",
    "0.0.0.0:9091",
    (c) => c.healthProbeBindAddress,
    { host: "0.0.0.0", port: 9091 },
  ],
  ["RESYNC_AUTH", "none", (c) => c.resyncAuth, { mode: "none" }],
  ["RESYNC_AUTH", "Kubernetes", (c) => c.resyncAuth, { mode: "kubernetes" }],
  [
    "RESYNC_TOKEN_FILE",
    "/var/run/secrets/resync/token",
    (c) => c.resyncAuth,
    { mode: "token", tokenFile: "/var/run/secrets/resync/token" },
  ],
  ["RESYNC_MIN_INTERVAL_MS", "0", (c) => ms(c.resyncMinInterval), 0],
  ["RESYNC_MIN_INTERVAL_MS", "300000", (c) => ms(c.resyncMinInterval), 300_000],
  ["LOG_LEVEL", "debug", (c) => c.logLevel, LogLevel.Debug],
  ["LOG_LEVEL", "INFO", (c) => c.logLevel, LogLevel.Info],
  ["LOG_LEVEL", "warn", (c) => c.logLevel, LogLevel.Warning],
  ["LOG_LEVEL", "Error", (c) => c.logLevel, LogLevel.Error],
  ["LOG_FORMAT", "pretty", (c) => c.logFormat, "pretty"],
  ["LOG_FORMAT", "JSON", (c) => c.logFormat, "json"],
  [
    "ENDPOINT_TOKEN_FILE",
    "/var/run/secrets/receiver/token",
    (c) => c.endpointTokenFile,
    Option.some("/var/run/secrets/receiver/token"),
  ],
  ["ENDPOINT_CA_FILE", "/etc/receiver/ca.crt", (c) => c.endpointCaFile, Option.some("/etc/receiver/ca.crt")],
  ["LEADER_ELECTION", "true", (c) => c.leaderElection.enabled, true],
  [
    "LEADER_ELECTION_ID",
    "vectordb-sync.example.com",
    (c) => c.leaderElection.id,
    "vectordb-sync.example.com",
  ],
  [
    "LEADER_ELECTION_NAMESPACE",
    "platform-sync",
    (c) => c.leaderElection.namespace,
    Option.some("platform-sync"),
  ],
  ["LEADER_ELECTION_LEASE_DURATION_MS", "30000", (c) => ms(c.leaderElection.leaseDuration), 30_000],
  ["LEADER_ELECTION_RENEW_DEADLINE_MS", "12000", (c) => ms(c.leaderElection.renewDeadline), 12_000],
  ["LEADER_ELECTION_RETRY_PERIOD_MS", "500", (c) => ms(c.leaderElection.retryPeriod), 500],
  ["DISCOVERY_INTERVAL_MS", "1000", (c) => ms(c.discoveryInterval), 1_000],
  ["DISCOVERY_INTERVAL_MS", "60000", (c) => ms(c.discoveryInterval), 60_000],
  ["LIST_CONCURRENCY", "1", (c) => c.listConcurrency, 1],
  ["LIST_CONCURRENCY", "1000", (c) => c.listConcurrency, 1000],
  ["WATCH_LIST", "false", (c) => c.watchList, false],
  ["API_SERVER_MAX_CONNECTIONS", "64", (c) => c.apiServerMaxConnections, 64],
  ["WATCH_NAMESPACES", " team-*, shared ,,team-*", (c) => c.watchNamespaces, ["team-*", "shared"]],
  ["EXCLUDE_NAMESPACES", "dev-*", (c) => c.excludeNamespaces, ["dev-*"]],
  [
    "LABEL_SELECTOR",
    "app.kubernetes.io/part-of=shop,tier!=cache,env in (prod, staging),!legacy",
    (c) => c.labelSelector,
    Option.some("app.kubernetes.io/part-of=shop,tier!=cache,env in (prod, staging),!legacy"),
  ],
  ["ANNOTATION_KEYS", "description", (c) => c.annotationKeys, Option.some(["description"])],
  [
    "ANNOTATION_KEYS",
    " team.io/* , */Owner,team.io/*,",
    (c) => c.annotationKeys,
    Option.some(["team.io/*", "*/Owner"]),
  ],
  ["ANNOTATION_KEYS", ",", (c) => c.annotationKeys, Option.some([])],
  ["LABEL_KEYS", "app,app.kubernetes.io/*", (c) => c.labelKeys, Option.some(["app", "app.kubernetes.io/*"])],
  [
    "ENDPOINT_HEADERS_FILE",
    "/etc/receiver/headers",
    (c) => c.endpointHeadersFile,
    Option.some("/etc/receiver/headers"),
  ],
  ["CHECKPOINT", "false", (c) => c.checkpoint.enabled, false],
  ["CHECKPOINT_NAME", "sync.example-checkpoint", (c) => c.checkpoint.name, "sync.example-checkpoint"],
  ["CHECKPOINT_PART_BYTES", "1024", (c) => c.checkpoint.partBytes, 1024],
]

describe("valid values", () => {
  for (const [name, value, get, expected] of valid) {
    it.effect(`${name}=${JSON.stringify(value)} parses`, () =>
      Effect.gen(function* () {
        expect(get(yield* load({ [name]: value }))).toEqual(expected)
      }),
    )
  }

  it("every variable has at least one valid-value case", () => {
    expect(new Set(valid.map(([name]) => name))).toEqual(new Set(configReference.map((v) => v.name)))
  })

  it.effect("values are trimmed", () =>
    Effect.gen(function* () {
      const c = yield* load({ BATCH_MAX_SIZE: " 20 ", LOG_LEVEL: "\tdebug\n" })
      expect(c.batchMaxSize).toBe(20)
      expect(c.logLevel).toBe(LogLevel.Debug)
    }),
  )

  it.effect("an empty or blank value counts as unset for every variable", () =>
    Effect.gen(function* () {
      const blank: Record<string, string> = {}
      for (const [i, v] of configReference.entries()) blank[v.name] = i % 2 === 0 ? "" : "  "
      expect(yield* load(blank)).toEqual(yield* load({}))
    }),
  )

  it.effect("reads the process environment by default, lists unsplit by the env provider", () =>
    Effect.gen(function* () {
      const saved = { ...process.env }
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
          Object.assign(process.env, saved)
        }),
      )
      for (const v of configReference) delete process.env[v.name]
      process.env.EXCLUDE_RESOURCE_TYPES = "events, leases"
      process.env.API_BIND_ADDRESS = "[::1]:9000"
      const c = yield* SyncConfig.pipe(Effect.provide(SyncConfig.layer))
      expect(c.excludeResourceTypes).toEqual(["events", "leases"])
      expect(c.apiBindAddress).toEqual({ host: "::1", port: 9000 })
    }).pipe(Effect.scoped),
  )

  it.effect("reads from a JSON ConfigProvider too", () =>
    Effect.gen(function* () {
      const c = yield* Effect.withConfigProvider(
        syncConfig,
        ConfigProvider.fromJson({ BATCH_MAX_SIZE: "7", WATCH_RESOURCE_TYPES: "pods,services" }),
      )
      expect(c.batchMaxSize).toBe(7)
      expect(c.watchResourceTypes).toEqual(["pods", "services"])
    }),
  )

  it.effect("DRY_RUN=true wins over a configured endpoint", () =>
    Effect.gen(function* () {
      const sending = yield* load({ INSTANCES_ENDPOINT: "http://r/sync" })
      expect(isDryRun(sending)).toBe(false)
      const dry = yield* load({ INSTANCES_ENDPOINT: "http://r/sync", DRY_RUN: "true" })
      expect(isDryRun(dry)).toBe(true)
    }),
  )
})

// -------------------------------------------------------------------------------------------------
// Malformed values: the exact line the operator sees
// -------------------------------------------------------------------------------------------------

const MS_0 = "an integer number of milliseconds between 0 and 2147483647"
const MS_1 = "an integer number of milliseconds between 1 and 2147483647"
const BIND = "[host]:port with a port from 0 to 65535, e.g. :8082, 127.0.0.1:8082 or [::1]:8082"
const KEYS = "description, or a comma-separated list of keys or globs such as description,team.io/*,*/owner"
const URL_ = "an absolute http:// or https:// URL"
const TYPES =
  "a comma-separated list of resource types written plural or plural.group (e.g. deployments,certificates.cert-manager.io)"

const invalid: ReadonlyArray<readonly [string, string, string]> = [
  ["INSTANCES_ENDPOINT", "receiver:3000/sync", `got "receiver:3000/sync", expected ${URL_}`],
  ["INSTANCES_ENDPOINT", "ftp://receiver/sync", `got "ftp://receiver/sync", expected ${URL_}`],
  ["INSTANCES_ENDPOINT", "/api/v1/instances/sync", `got "/api/v1/instances/sync", expected ${URL_}`],
  ["REST_ENDPOINT", "not a url", `got "not a url", expected ${URL_}`],
  ["CAPABILITIES_ENDPOINT", "localhost", `got "localhost", expected ${URL_}`],
  ["DRY_RUN", "yes", `got "yes", expected a boolean (true, false, 1 or 0)`],
  ["DEBOUNCE_WINDOW_MS", "-1", `got "-1", expected ${MS_0}`],
  ["DEBOUNCE_WINDOW_MS", "10s", `got "10s", expected ${MS_0}`],
  ["DEBOUNCE_MAX_WAIT_MS", "0", `got "0", expected ${MS_1}`],
  ["BATCH_FLUSH_INTERVAL_MS", "1.5", `got "1.5", expected ${MS_0}`],
  ["BATCH_FLUSH_INTERVAL_MS", "2147483648", `got "2147483648", expected ${MS_0}`],
  ["BATCH_MAX_SIZE", "abc", `got "abc", expected an integer between 1 and 10000`],
  ["BATCH_MAX_SIZE", "0", `got "0", expected an integer between 1 and 10000`],
  ["BATCH_MAX_SIZE", "10001", `got "10001", expected an integer between 1 and 10000`],
  ["BATCH_MAX_BYTES", "1023", `got "1023", expected an integer number of bytes between 1024 and 104857600`],
  ["BATCH_MAX_BYTES", "5MiB", `got "5MiB", expected an integer number of bytes between 1024 and 104857600`],
  ["RESYNC_INTERVAL_MIN", "-5", `got "-5", expected an integer number of minutes between 0 and 35791`],
  ["RESYNC_INTERVAL_MIN", "1d", `got "1d", expected an integer number of minutes between 0 and 35791`],
  ["SHUTDOWN_TIMEOUT_MS", "1e4", `got "1e4", expected ${MS_0}`],
  ["SEND_TIMEOUT_MS", "0", `got "0", expected ${MS_1}`],
  ["RETRY_INITIAL_BACKOFF_MS", "0", `got "0", expected ${MS_1}`],
  ["RETRY_MAX_BACKOFF_MS", "thirty", `got "thirty", expected ${MS_1}`],
  [
    "WATCH_RESOURCE_TYPES",
    "deployments,apps/v1/deployments",
    `got "deployments,apps/v1/deployments", expected ${TYPES}; not valid: "apps/v1/deployments"`,
  ],
  [
    "WATCH_RESOURCE_TYPES",
    "my_things,-pods",
    `got "my_things,-pods", expected ${TYPES}; not valid: "my_things", "-pods"`,
  ],
  [
    "EXCLUDE_RESOURCE_TYPES",
    "events leases",
    `got "events leases", expected ${TYPES}; not valid: "events leases"`,
  ],
  ["API_BIND_ADDRESS", "8082", `got "8082", expected ${BIND}`],
  ["API_BIND_ADDRESS", ":65536", `got ":65536", expected ${BIND}`],
  ["API_BIND_ADDRESS", "::1:8082", `got "::1:8082", expected ${BIND}`],
  ["API_BIND_ADDRESS", "[127.0.0.1]:8082", `got "[127.0.0.1]:8082", expected ${BIND}`],
  ["HEALTH_PROBE_BIND_ADDRESS", "host name:8081", `got "host name:8081", expected ${BIND}`],
  ["HEALTH_PROBE_BIND_ADDRESS", ":http", `got ":http", expected ${BIND}`],
  ["RESYNC_AUTH", "basic", `got "basic", expected kubernetes, token or none`],
  ["RESYNC_TOKEN_FILE", "/run/token\u0000", `got "/run/token\\u0000", expected a file path`],
  ["RESYNC_MIN_INTERVAL_MS", "1m", `got "1m", expected ${MS_0}`],
  ["LOG_LEVEL", "verbose", `got "verbose", expected one of debug, info, warn, error`],
  ["LOG_FORMAT", "text", `got "text", expected json or pretty`],
  ["ENDPOINT_TOKEN_FILE", "/run/token\u0000", `got "/run/token\\u0000", expected a file path`],
  ["ENDPOINT_CA_FILE", "/etc/ca\u0000.crt", `got "/etc/ca\\u0000.crt", expected a file path`],
  ["LEADER_ELECTION", "on", `got "on", expected a boolean (true, false, 1 or 0)`],
  [
    "LEADER_ELECTION_ID",
    "K8s_Sync",
    `got "K8s_Sync", expected a DNS-1123 name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
  ],
  [
    "LEADER_ELECTION_NAMESPACE",
    "team.a",
    `got "team.a", expected a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)`,
  ],
  ["LEADER_ELECTION_LEASE_DURATION_MS", "15s", `got "15s", expected ${MS_1}`],
  ["LEADER_ELECTION_RENEW_DEADLINE_MS", "-10000", `got "-10000", expected ${MS_1}`],
  ["LEADER_ELECTION_RETRY_PERIOD_MS", "0", `got "0", expected ${MS_1}`],
  [
    "DISCOVERY_INTERVAL_MS",
    "999",
    `got "999", expected an integer number of milliseconds between 1000 and 2147483647`,
  ],
  ["LIST_CONCURRENCY", "0", `got "0", expected an integer between 1 and 1000`],
  ["WATCH_LIST", "maybe", `got "maybe", expected a boolean (true, false, 1 or 0)`],
  ["API_SERVER_MAX_CONNECTIONS", "0", `got "0", expected an integer between 1 and 1000`],
  [
    "WATCH_NAMESPACES",
    "team_a",
    `got "team_a", expected a comma-separated list of namespace names or globs (lowercase letters, digits, '-' and '*', at most 63 characters, e.g. team-a,dev-*); not valid: "team_a"`,
  ],
  [
    "EXCLUDE_NAMESPACES",
    "dev-*,Prod",
    `got "dev-*,Prod", expected a comma-separated list of namespace names or globs (lowercase letters, digits, '-' and '*', at most 63 characters, e.g. team-a,dev-*); not valid: "Prod"`,
  ],
  [
    "LABEL_SELECTOR",
    "app=web,tier==a==b",
    `got "app=web,tier==a==b", expected a label selector such as app=web,tier!=cache,env in (prod,staging),!legacy; not valid: "tier==a==b"`,
  ],
  [
    "ANNOTATION_KEYS",
    "description,a/b/c,ok, has space",
    `got "description,a/b/c,ok, has space", expected ${KEYS}; not valid: "a/b/c", "has space"`,
  ],
  ["LABEL_KEYS", "app=web", `got "app=web", expected ${KEYS}; not valid: "app=web"`],
  ["ENDPOINT_HEADERS_FILE", "/run/h\u0000", `got "/run/h\\u0000", expected a file path`],
  ["CHECKPOINT", "on", `got "on", expected a boolean (true, false, 1 or 0)`],
  [
    "CHECKPOINT_NAME",
    "Checkpoint",
    `got "Checkpoint", expected a DNS-1123 name (lowercase letters, digits, '-' and '.') of at most 240 characters, its last label at most 56`,
  ],
  [
    "CHECKPOINT_NAME",
    `x.${"a".repeat(57)}`,
    `got "x.${"a".repeat(57)}", expected a DNS-1123 name (lowercase letters, digits, '-' and '.') of at most 240 characters, its last label at most 56`,
  ],
  [
    "CHECKPOINT_PART_BYTES",
    "1023",
    `got "1023", expected an integer number of bytes between 1024 and 1000000`,
  ],
]

describe("malformed values", () => {
  for (const [name, value, message] of invalid) {
    it.effect(`${name}=${JSON.stringify(value)} is rejected with a line naming it`, () =>
      Effect.gen(function* () {
        expect(yield* problems({ [name]: value })).toEqual([`${name}: ${message}`])
      }),
    )
  }

  it("every variable has at least one malformed-value case", () => {
    expect(new Set(invalid.map(([name]) => name))).toEqual(new Set(configReference.map((v) => v.name)))
  })

  it.effect("several bad values give one line each, in reading order", () =>
    Effect.gen(function* () {
      const error = yield* load({
        BATCH_MAX_SIZE: "abc",
        LOG_LEVEL: "loud",
        API_BIND_ADDRESS: "8082",
        DEBOUNCE_WINDOW_MS: "soon",
        LEADER_ELECTION_ID: "Bad_Id",
      }).pipe(Effect.flip)
      expect(ConfigError.isAnd(error)).toBe(true)
      expect(formatConfigError(error)).toEqual([
        `DEBOUNCE_WINDOW_MS: got "soon", expected ${MS_0}`,
        `BATCH_MAX_SIZE: got "abc", expected an integer between 1 and 10000`,
        `API_BIND_ADDRESS: got "8082", expected ${BIND}`,
        `LOG_LEVEL: got "loud", expected one of debug, info, warn, error`,
        `LEADER_ELECTION_ID: got "Bad_Id", expected a DNS-1123 name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
      ])
    }),
  )

  it.effect("a bad value in one group does not hide a cross-field problem in another", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({
          BATCH_MAX_SIZE: "0",
          RETRY_INITIAL_BACKOFF_MS: "5000",
          RETRY_MAX_BACKOFF_MS: "100",
        }),
      ).toEqual([
        `BATCH_MAX_SIZE: got "0", expected an integer between 1 and 10000`,
        `RETRY_MAX_BACKOFF_MS: got "100", expected a value at least RETRY_INITIAL_BACKOFF_MS (5000)`,
      ])
    }),
  )

  it.effect("credentials in a URL never appear in a message", () =>
    Effect.gen(function* () {
      const lines = yield* problems({
        INSTANCES_ENDPOINT: "ftp://user:s3cr3t@receiver/sync",
        CAPABILITIES_ENDPOINT: "gopher://t0ken@receiver/caps",
      })
      expect(lines).toEqual([
        `INSTANCES_ENDPOINT: got "ftp://***:***@receiver/sync", expected ${URL_}`,
        `CAPABILITIES_ENDPOINT: got "gopher://***@receiver/caps", expected ${URL_}`,
      ])
      expect(lines.join("\n")).not.toMatch(/s3cr3t|t0ken/)
    }),
  )

  it.effect("a very long value is cut in the message", () =>
    Effect.gen(function* () {
      const [line] = yield* problems({ LOG_FORMAT: "x".repeat(5000) })
      expect(line).toBe(`LOG_FORMAT: got "${"x".repeat(200)}…", expected json or pretty`)
    }),
  )
})

// -------------------------------------------------------------------------------------------------
// Cross-field rules
// -------------------------------------------------------------------------------------------------

describe("cross-field rules", () => {
  it.effect("RESYNC_AUTH=token with RESYNC_TOKEN_FILE reads the file; without it, it is refused", () =>
    Effect.gen(function* () {
      const c = yield* load({ RESYNC_AUTH: "token", RESYNC_TOKEN_FILE: "/t" })
      expect(c.resyncAuth).toEqual({ mode: "token", tokenFile: "/t" })
      expect(yield* problems({ RESYNC_AUTH: "token" })).toEqual([
        `RESYNC_AUTH: got "token", expected kubernetes or none when RESYNC_TOKEN_FILE is unset`,
      ])
    }),
  )

  it.effect("RESYNC_TOKEN_FILE with RESYNC_AUTH=kubernetes or none is refused, not silently ignored", () =>
    Effect.gen(function* () {
      for (const mode of ["kubernetes", "none"]) {
        expect(yield* problems({ RESYNC_AUTH: mode, RESYNC_TOKEN_FILE: "/t" })).toEqual([
          `RESYNC_TOKEN_FILE: got "/t", expected no value when RESYNC_AUTH=${mode}`,
        ])
      }
    }),
  )

  it.effect("DEBOUNCE_MAX_WAIT_MS below DEBOUNCE_WINDOW_MS names both", () =>
    Effect.gen(function* () {
      expect(yield* problems({ DEBOUNCE_WINDOW_MS: "20000", DEBOUNCE_MAX_WAIT_MS: "5000" })).toEqual([
        `DEBOUNCE_MAX_WAIT_MS: got "5000", expected a value at least DEBOUNCE_WINDOW_MS (20000)`,
      ])
    }),
  )

  it.effect("a window above the default max wait is blamed on the window, the variable that was set", () =>
    Effect.gen(function* () {
      const window = String(num(V.DEBOUNCE_MAX_WAIT_MS) + 1)
      expect(yield* problems({ DEBOUNCE_WINDOW_MS: window })).toEqual([
        `DEBOUNCE_WINDOW_MS: got "${window}", expected a value at most DEBOUNCE_MAX_WAIT_MS (${V.DEBOUNCE_MAX_WAIT_MS.default}, its default)`,
      ])
    }),
  )

  it.effect("a max wait below the default window is blamed on the max wait", () =>
    Effect.gen(function* () {
      const maxWait = String(num(V.DEBOUNCE_WINDOW_MS) - 1)
      expect(yield* problems({ DEBOUNCE_MAX_WAIT_MS: maxWait })).toEqual([
        `DEBOUNCE_MAX_WAIT_MS: got "${maxWait}", expected a value at least DEBOUNCE_WINDOW_MS (${V.DEBOUNCE_WINDOW_MS.default}, its default)`,
      ])
    }),
  )

  it.effect("DEBOUNCE_MAX_WAIT_MS equal to DEBOUNCE_WINDOW_MS is allowed", () =>
    Effect.gen(function* () {
      const c = yield* load({ DEBOUNCE_WINDOW_MS: "60000", DEBOUNCE_MAX_WAIT_MS: "60000" })
      expect(ms(c.debounceMaxWait)).toBe(60_000)
    }),
  )

  it.effect("RETRY_MAX_BACKOFF_MS below RETRY_INITIAL_BACKOFF_MS names both; equal is allowed", () =>
    Effect.gen(function* () {
      const initial = String(num(V.RETRY_MAX_BACKOFF_MS) * 2)
      expect(yield* problems({ RETRY_INITIAL_BACKOFF_MS: initial })).toEqual([
        `RETRY_INITIAL_BACKOFF_MS: got "${initial}", expected a value at most RETRY_MAX_BACKOFF_MS (${V.RETRY_MAX_BACKOFF_MS.default}, its default)`,
      ])
      const c = yield* load({ RETRY_INITIAL_BACKOFF_MS: V.RETRY_MAX_BACKOFF_MS.default })
      expect(ms(c.retryInitialBackoff)).toBe(num(V.RETRY_MAX_BACKOFF_MS))
    }),
  )

  it.effect("leader election: renew deadline must be below the lease duration (equal is not enough)", () =>
    Effect.gen(function* () {
      const lease = V.LEADER_ELECTION_LEASE_DURATION_MS.default
      expect(yield* problems({ LEADER_ELECTION_RENEW_DEADLINE_MS: lease })).toEqual([
        `LEADER_ELECTION_RENEW_DEADLINE_MS: got "${lease}", expected a value less than LEADER_ELECTION_LEASE_DURATION_MS (${lease}, its default)`,
      ])
    }),
  )

  it.effect("leader election: lease > renew > retry violated twice gives two lines", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({
          LEADER_ELECTION_LEASE_DURATION_MS: "5000",
          LEADER_ELECTION_RENEW_DEADLINE_MS: "6000",
          LEADER_ELECTION_RETRY_PERIOD_MS: "7000",
        }),
      ).toEqual([
        `LEADER_ELECTION_LEASE_DURATION_MS: got "5000", expected a value greater than LEADER_ELECTION_RENEW_DEADLINE_MS (6000)`,
        `LEADER_ELECTION_RENEW_DEADLINE_MS: got "6000", expected a value greater than LEADER_ELECTION_RETRY_PERIOD_MS (7000)`,
      ])
    }),
  )

  it.effect("leader election: a consistent custom timing is accepted", () =>
    Effect.gen(function* () {
      const c = yield* load({
        LEADER_ELECTION: "true",
        LEADER_ELECTION_LEASE_DURATION_MS: "60000",
        LEADER_ELECTION_RENEW_DEADLINE_MS: "40000",
        LEADER_ELECTION_RETRY_PERIOD_MS: "5000",
      })
      expect(ms(c.leaderElection.leaseDuration)).toBe(60_000)
      expect(ms(c.leaderElection.renewDeadline)).toBe(40_000)
      expect(ms(c.leaderElection.retryPeriod)).toBe(5_000)
    }),
  )

  it.effect("API and health probe on the same port is rejected", () =>
    Effect.gen(function* () {
      const api = V.API_BIND_ADDRESS.default
      const health = V.HEALTH_PROBE_BIND_ADDRESS.default
      expect(yield* problems({ HEALTH_PROBE_BIND_ADDRESS: api })).toEqual([
        `HEALTH_PROBE_BIND_ADDRESS: got "${api}", expected a port different from API_BIND_ADDRESS ("${api}")`,
      ])
      expect(yield* problems({ API_BIND_ADDRESS: `127.0.0.1${health}` })).toEqual([
        `API_BIND_ADDRESS: got "127.0.0.1${health}", expected a port different from HEALTH_PROBE_BIND_ADDRESS ("${health}")`,
      ])
    }),
  )

  it.effect("the same port on two different hosts, or port 0 twice, is allowed", () =>
    Effect.gen(function* () {
      const c = yield* load({
        API_BIND_ADDRESS: "127.0.0.1:9000",
        HEALTH_PROBE_BIND_ADDRESS: "10.0.0.1:9000",
      })
      expect(c.healthProbeBindAddress).toEqual({ host: "10.0.0.1", port: 9000 })
      yield* load({ API_BIND_ADDRESS: ":0", HEALTH_PROBE_BIND_ADDRESS: ":0" })
    }),
  )

  it.effect("WATCH_RESOURCE_TYPES wins over an explicit EXCLUDE_RESOURCE_TYPES, with a warning", () =>
    Effect.gen(function* () {
      const c = yield* load({ WATCH_RESOURCE_TYPES: "deployments", EXCLUDE_RESOURCE_TYPES: "pods" })
      expect(c.watchResourceTypes).toEqual(["deployments"])
      expect(c.warnings).toEqual([
        "EXCLUDE_RESOURCE_TYPES is ignored because WATCH_RESOURCE_TYPES is set: the allowlist wins (as in the Go controller)",
      ])
      const quiet = yield* load({ WATCH_RESOURCE_TYPES: "deployments" })
      expect(quiet.warnings).toEqual([])
    }),
  )
})

// -------------------------------------------------------------------------------------------------
// INSTANCES_ENDPOINT and its alias REST_ENDPOINT
// -------------------------------------------------------------------------------------------------

describe("INSTANCES_ENDPOINT / REST_ENDPOINT alias", () => {
  it.effect("the alias alone is used", () =>
    Effect.gen(function* () {
      expect(href((yield* load({ REST_ENDPOINT: "http://old:3000/sync" })).instancesEndpoint)).toBe(
        "http://old:3000/sync",
      )
    }),
  )

  it.effect("both set to the same URL (after normalisation) is fine", () =>
    Effect.gen(function* () {
      const c = yield* load({
        INSTANCES_ENDPOINT: "http://Receiver:80/sync",
        REST_ENDPOINT: "http://receiver/sync",
      })
      expect(href(c.instancesEndpoint)).toBe("http://receiver/sync")
    }),
  )

  it.effect("both set to different URLs is an error naming both", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({ INSTANCES_ENDPOINT: "http://a/sync", REST_ENDPOINT: "http://b/sync" }),
      ).toEqual([
        `INSTANCES_ENDPOINT: got "http://a/sync", expected the same URL as its alias REST_ENDPOINT (got "http://b/sync"), or only one of the two set`,
      ])
    }),
  )

  it.effect("an empty INSTANCES_ENDPOINT does not hide the alias", () =>
    Effect.gen(function* () {
      const c = yield* load({ INSTANCES_ENDPOINT: "", REST_ENDPOINT: "http://b/sync" })
      expect(href(c.instancesEndpoint)).toBe("http://b/sync")
    }),
  )

  it.effect("both malformed gives two lines", () =>
    Effect.gen(function* () {
      expect(yield* problems({ INSTANCES_ENDPOINT: "a", REST_ENDPOINT: "b" })).toEqual([
        `INSTANCES_ENDPOINT: got "a", expected ${URL_}`,
        `REST_ENDPOINT: got "b", expected ${URL_}`,
      ])
    }),
  )
})

// -------------------------------------------------------------------------------------------------
// Errors, service and layers
// -------------------------------------------------------------------------------------------------

describe("formatConfigError", () => {
  it("formats Effect's own ConfigErrors too, one line each, without duplicates", () => {
    const error = ConfigError.And(
      ConfigError.MissingData(["KUBECONFIG"], "Expected KUBECONFIG to exist in the process context"),
      ConfigError.Or(
        ConfigError.InvalidData(["X"], "bad"),
        ConfigError.And(ConfigError.InvalidData(["X"], "bad"), ConfigError.Unsupported([], "nope")),
      ),
    )
    expect(formatConfigError(error)).toEqual([
      "KUBECONFIG: Expected KUBECONFIG to exist in the process context",
      "X: bad",
      "configuration: nope",
    ])
  })

  it.effect("a nested configuration keeps the full variable name", () =>
    Effect.gen(function* () {
      const error = yield* Effect.withConfigProvider(
        Config.nested(syncConfig, "SYNC"),
        ConfigProvider.fromMap(new Map([["SYNC_BATCH_MAX_SIZE", "x"]]), { pathDelim: "_" }),
      ).pipe(Effect.flip)
      expect(formatConfigError(error)).toEqual([
        `SYNC_BATCH_MAX_SIZE: got "x", expected an integer between 1 and 10000`,
      ])
    }),
  )
})

describe("SyncConfig service", () => {
  it.effect("layer reads the current ConfigProvider", () =>
    Effect.gen(function* () {
      const c = yield* SyncConfig.pipe(
        Effect.provide(SyncConfig.layer),
        Effect.withConfigProvider(provider({ BATCH_MAX_SIZE: "9" })),
      )
      expect(c.batchMaxSize).toBe(9)
    }),
  )

  it.effect("layer fails with ConfigValidationError carrying every problem", () =>
    Effect.gen(function* () {
      const error = yield* SyncConfig.pipe(
        Effect.provide(SyncConfig.layer),
        Effect.withConfigProvider(provider({ BATCH_MAX_SIZE: "x", LOG_FORMAT: "xml" })),
        Effect.flip,
      )
      expect(error).toBeInstanceOf(ConfigValidationError)
      expect(error._tag).toBe("ConfigValidationError")
      expect(error.problems).toEqual([
        `BATCH_MAX_SIZE: got "x", expected an integer between 1 and 10000`,
        `LOG_FORMAT: got "xml", expected json or pretty`,
      ])
      expect(error.message).toBe(`invalid configuration:\n${error.problems.join("\n")}`)
      expect(formatConfigError(error.cause)).toEqual(error.problems)
    }),
  )

  it.effect("layerFromEnv validates like the environment", () =>
    Effect.gen(function* () {
      const c = yield* SyncConfig.pipe(
        Effect.provide(SyncConfig.layerFromEnv({ DRY_RUN: "1", LOG_LEVEL: undefined })),
      )
      expect(c.dryRun).toBe(true)
      const error = yield* SyncConfig.pipe(
        Effect.provide(SyncConfig.layerFromEnv({ DRY_RUN: "maybe" })),
        Effect.flip,
      )
      expect(error.problems).toEqual([`DRY_RUN: got "maybe", expected a boolean (true, false, 1 or 0)`])
    }),
  )

  it.effect("layerFrom merges typed overrides into the defaults", () =>
    Effect.gen(function* () {
      const c = yield* SyncConfig.pipe(
        Effect.provide(SyncConfig.layerFrom({ batchMaxSize: 3, debounceWindow: Duration.millis(5) })),
      )
      expect(c.batchMaxSize).toBe(3)
      expect(ms(c.debounceWindow)).toBe(5)
      expect(c.logFormat).toBe("json")
      // Everything not overridden is the documented default.
      expectDeclaredDefaults({
        ...c,
        batchMaxSize: defaultSyncConfig.batchMaxSize,
        debounceWindow: defaultSyncConfig.debounceWindow,
      })
    }),
  )
})
