/**
 * The controller's configuration: every environment variable, read once at start through Effect
 * `Config`, parsed into typed values and validated.
 *
 * Rules that hold for every variable (so operators can predict them):
 * - Values are trimmed; an empty or blank value is the same as an unset variable (a Helm chart that
 *   renders `value: ""` gets the default). This is also what the Go controller does.
 * - A malformed value is an error, never a silent fallback to the default. Every problem is reported,
 *   not just the first: `Config.all` accumulates failures in `ConfigError.And`, and the cross-field
 *   checks run per group so one bad group does not hide another.
 * - Error messages name the variable, quote the value received and say what is expected. Values that
 *   look like URLs have their user-info masked; the receiver token itself is never read here.
 */
import { isIP } from "node:net"
import {
  Config,
  ConfigError,
  ConfigProvider,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  LogLevel,
  Option,
} from "effect"

// ---------------------------------------------------------------------------------------------------
// The typed configuration
// ---------------------------------------------------------------------------------------------------

/** A listen address: `host` undefined means all interfaces. */
export interface BindAddress {
  readonly host: string | undefined
  readonly port: number
}

export type LogFormat = "json" | "pretty"

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
  readonly apiBindAddress: BindAddress
  readonly healthProbeBindAddress: BindAddress
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
  /** Non-fatal remarks found while reading (e.g. an ignored variable); log them once logging is up. */
  readonly warnings: ReadonlyArray<string>
}

/** True when payloads go to stdout: `DRY_RUN=true`, or no instances endpoint configured. */
export const isDryRun = (config: SyncConfigShape): boolean =>
  config.dryRun || Option.isNone(config.instancesEndpoint)

// ---------------------------------------------------------------------------------------------------
// Reading one variable
// ---------------------------------------------------------------------------------------------------

/** A parser yields the value or, on the left, what was expected ("an integer between 1 and 10"). */
export type Parser<A> = (text: string) => Either.Either<A, string>

/** One variable as read: its value, the text it came from and whether the operator set it. */
interface Read<A> {
  readonly name: string
  readonly value: A
  /** The trimmed value received, or the default's text when unset. */
  readonly text: string
  readonly explicit: boolean
}

const MAX_SHOWN_CHARS = 200

/**
 * Quotes a received value for an error message. User-info in URLs is masked (it may be a credential)
 * and very long values are cut, so a message stays one readable line.
 */
export const showValue = (text: string): string => {
  let shown = text
  if (URL.canParse(text)) {
    const url = new URL(text)
    if (url.username !== "" || url.password !== "") {
      url.username = "***"
      url.password = url.password === "" ? "" : "***"
      shown = url.href
    }
  }
  if (shown.length > MAX_SHOWN_CHARS) shown = `${shown.slice(0, MAX_SHOWN_CHARS)}…`
  return JSON.stringify(shown)
}

const invalid = (name: string, text: string, expected: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([name], `got ${showValue(text)}, expected ${expected}`)

/** The raw value of a variable, trimmed; None when unset, empty or blank. */
export const rawValue = (name: string): Config.Config<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.option,
    Config.map(Option.flatMap((s) => Option.liftPredicate(s.trim(), (t) => t !== ""))),
  )

const readWithDefault = <A>(name: string, parse: Parser<A>, defaultText: string): Config.Config<Read<A>> =>
  Config.mapOrFail(rawValue(name), (raw) => {
    const text = Option.getOrElse(raw, () => defaultText)
    return Either.mapBoth(parse(text), {
      onLeft: (expected) => invalid(name, text, expected),
      onRight: (value) => ({ name, value, text, explicit: Option.isSome(raw) }),
    })
  })

const readOptional = <A>(name: string, parse: Parser<A>): Config.Config<Read<Option.Option<A>>> =>
  Config.mapOrFail(
    rawValue(name),
    Option.match({
      onNone: (): Either.Either<Read<Option.Option<A>>, ConfigError.ConfigError> =>
        Either.right({ name, value: Option.none(), text: "", explicit: false }),
      onSome: (text) =>
        Either.mapBoth(parse(text), {
          onLeft: (expected) => invalid(name, text, expected),
          onRight: (value): Read<Option.Option<A>> => ({
            name,
            value: Option.some(value),
            text,
            explicit: true,
          }),
        }),
    }),
  )

const readValue = <A>(read: Read<A>): A => read.value

/** A variable with a default (used when unset or empty), parsed with `parse`. */
export const withParser = <A>(name: string, parse: Parser<A>, defaultText: string): Config.Config<A> =>
  Config.map(readWithDefault(name, parse, defaultText), readValue)

/** An optional variable parsed with `parse`: None when unset or empty. */
export const optionalWithParser = <A>(name: string, parse: Parser<A>): Config.Config<Option.Option<A>> =>
  Config.map(readOptional(name, parse), readValue)

// ---------------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------------

/**
 * Effect's clock treats a sleep longer than 2^31-1 ms as infinite (a JS timer limit), so a larger
 * duration would silently never fire: reject it instead.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

export interface IntegerRange {
  readonly min: number
  readonly max?: number
}

export const parseInteger =
  (range: IntegerRange, unit?: string): Parser<number> =>
  (text) => {
    const max = range.max ?? Number.MAX_SAFE_INTEGER
    const what = unit === undefined ? "an integer" : `an integer number of ${unit}`
    const expected =
      range.max === undefined ? `${what} >= ${range.min}` : `${what} between ${range.min} and ${range.max}`
    if (!/^[+-]?\d+$/.test(text)) return Either.left(expected)
    const n = Number(text) + 0 // "+0" and "-0" become 0
    return Number.isSafeInteger(n) && n >= range.min && n <= max ? Either.right(n) : Either.left(expected)
  }

export const parseBoolean: Parser<boolean> = (text) => {
  switch (text.toLowerCase()) {
    case "true":
    case "1":
      return Either.right(true)
    case "false":
    case "0":
      return Either.right(false)
    default:
      return Either.left("a boolean (true, false, 1 or 0)")
  }
}

export const parseHttpUrl: Parser<URL> = (text) => {
  const expected = "an absolute http:// or https:// URL"
  if (!URL.canParse(text)) return Either.left(expected)
  const url = new URL(text)
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
    ? Either.right(url)
    : Either.left(expected)
}

const DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
const dns1123Label = new RegExp(`^${DNS_LABEL}$`)
const dns1123Subdomain = new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`)
const hostnameRe = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/

/** A DNS-1123 label (namespace names): lowercase alphanumerics and '-', at most 63 characters. */
export const parseDns1123Label: Parser<string> = (text) =>
  text.length <= 63 && dns1123Label.test(text)
    ? Either.right(text)
    : Either.left("a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)")

/** A DNS-1123 subdomain (object names such as a Lease): labels joined by '.', at most 253 characters. */
export const parseDns1123Subdomain: Parser<string> = (text) =>
  text.length <= 253 && text.split(".").every((l) => l.length <= 63) && dns1123Subdomain.test(text)
    ? Either.right(text)
    : Either.left("a DNS-1123 name (lowercase letters, digits, '-' and '.', at most 253 characters)")

/** `[host]:port`: host optional (empty = all interfaces), IPv6 in brackets, port 0..65535. */
export const parseBindAddress: Parser<BindAddress> = (text) => {
  const expected = "[host]:port with a port from 0 to 65535, e.g. :8082, 127.0.0.1:8082 or [::1]:8082"
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text)
  if (m === null) return Either.left(expected)
  const [, ipv6, host, portText] = m
  const port = Number(portText)
  if (port > 65535) return Either.left(expected)
  if (ipv6 !== undefined) return isIP(ipv6) === 6 ? Either.right({ host: ipv6, port }) : Either.left(expected)
  if (host === undefined || host === "") return Either.right({ host: undefined, port })
  return isIP(host) === 4 || (host.length <= 253 && hostnameRe.test(host))
    ? Either.right({ host, port })
    : Either.left(expected)
}

const resourceTypeRe = new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`)

/**
 * A comma-separated list of resource types, `plural` or `plural.group`. Items are trimmed and
 * lowercased (as the Go controller does), empty items ignored, duplicates dropped.
 */
export const parseResourceTypeList: Parser<ReadonlyArray<string>> = (text) => {
  const items = text
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "")
  const bad = items.filter((s) => s.length > 253 || !resourceTypeRe.test(s))
  return bad.length === 0
    ? Either.right([...new Set(items)])
    : Either.left(
        "a comma-separated list of resource types written plural or plural.group " +
          `(e.g. deployments,certificates.cert-manager.io); not valid: ${bad.map((s) => showValue(s)).join(", ")}`,
      )
}

const logLevels: Record<string, LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
}

export const parseLogLevel: Parser<LogLevel.LogLevel> = (text) => {
  const level = logLevels[text.toLowerCase()]
  return level === undefined ? Either.left("one of debug, info, warn, error") : Either.right(level)
}

export const parseLogFormat: Parser<LogFormat> = (text) => {
  const format = text.toLowerCase()
  return format === "json" || format === "pretty" ? Either.right(format) : Either.left("json or pretty")
}

export const parseFilePath: Parser<string> = (text) =>
  text.includes("\0") ? Either.left("a file path") : Either.right(text)

// ---------------------------------------------------------------------------------------------------
// Typed-config helpers (reusable by other modules that add variables)
// ---------------------------------------------------------------------------------------------------

/** Milliseconds as a Duration, default `defaultMs`, range `min..max` (max defaults to the timer limit). */
export const integerMs = (
  name: string,
  defaultMs: number,
  range: IntegerRange = { min: 0 },
): Config.Config<Duration.Duration> =>
  Config.map(
    integer(name, defaultMs, { min: range.min, max: range.max ?? MAX_TIMER_MS }, "milliseconds"),
    (ms) => Duration.millis(ms),
  )

export const integer = (
  name: string,
  defaultValue: number,
  range: IntegerRange,
  unit?: string,
): Config.Config<number> => withParser(name, parseInteger(range, unit), String(defaultValue))

export const boolean = (name: string, defaultValue: boolean): Config.Config<boolean> =>
  withParser(name, parseBoolean, String(defaultValue))

export const httpUrl = (name: string): Config.Config<Option.Option<URL>> =>
  optionalWithParser(name, parseHttpUrl)

export const bindAddress = (name: string, defaultText: string): Config.Config<BindAddress> =>
  withParser(name, parseBindAddress, defaultText)

export const resourceTypeList = (
  name: string,
  defaultValue: ReadonlyArray<string>,
): Config.Config<ReadonlyArray<string>> => withParser(name, parseResourceTypeList, defaultValue.join(","))

export const filePath = (name: string): Config.Config<Option.Option<string>> =>
  optionalWithParser(name, parseFilePath)

// ---------------------------------------------------------------------------------------------------
// The variables
// ---------------------------------------------------------------------------------------------------

const MS = "milliseconds"
const msRange = (min: number): IntegerRange => ({ min, max: MAX_TIMER_MS })
const ms = (name: string, defaultMs: number, min: number) =>
  readWithDefault(name, parseInteger(msRange(min), MS), String(defaultMs))

export const DEFAULT_EXCLUDE_RESOURCE_TYPES: ReadonlyArray<string> = [
  "events",
  "leases",
  "endpointslices",
  "componentstatuses",
  "customresourcedefinitions",
]

/** Largest `RESYNC_INTERVAL_MIN` whose duration the timer can still represent (about 24.8 days). */
export const MAX_RESYNC_INTERVAL_MIN = Math.floor(MAX_TIMER_MS / 60_000)

/**
 * `lower` must be below `upper` (strictly or not). The line names the variable the operator set:
 * when only one of the two is explicit, the other is at its default and the fix is on the set one.
 */
const ordered = (
  lower: Read<number>,
  upper: Read<number>,
  strict: boolean,
): Either.Either<void, ConfigError.ConfigError> => {
  if (strict ? lower.value < upper.value : lower.value <= upper.value) return Either.void
  const other = (r: Read<number>) => `${r.name} (${r.value}${r.explicit ? "" : ", its default"})`
  return upper.explicit || !lower.explicit
    ? Either.left(
        invalid(upper.name, upper.text, `a value ${strict ? "greater than" : "at least"} ${other(lower)}`),
      )
    : Either.left(
        invalid(lower.name, lower.text, `a value ${strict ? "less than" : "at most"} ${other(upper)}`),
      )
}

/** Runs independent checks and reports every failure. */
const allChecks = <A>(
  value: A,
  checks: ReadonlyArray<Either.Either<void, ConfigError.ConfigError>>,
): Either.Either<A, ConfigError.ConfigError> => {
  const errors = checks.flatMap((c) => (Either.isLeft(c) ? [c.left] : []))
  const [first, ...rest] = errors
  return first === undefined ? Either.right(value) : Either.left(rest.reduce(ConfigError.And, first))
}

const toMs = (r: Read<number>) => Duration.millis(r.value)

const endpoints = Config.all({
  instances: readOptional("INSTANCES_ENDPOINT", parseHttpUrl),
  rest: readOptional("REST_ENDPOINT", parseHttpUrl),
  capabilities: readOptional("CAPABILITIES_ENDPOINT", parseHttpUrl),
}).pipe(
  Config.mapOrFail(({ capabilities, instances, rest }) => {
    const conflict =
      Option.isSome(instances.value) &&
      Option.isSome(rest.value) &&
      instances.value.value.href !== rest.value.value.href
    return conflict
      ? Either.left(
          invalid(
            instances.name,
            instances.text,
            `the same URL as its alias REST_ENDPOINT (got ${showValue(rest.text)}), or only one of the two set`,
          ),
        )
      : Either.right({
          instancesEndpoint: Option.orElse(instances.value, () => rest.value),
          capabilitiesEndpoint: capabilities.value,
        })
  }),
)

const debounce = Config.all({
  window: ms("DEBOUNCE_WINDOW_MS", 10_000, 0),
  maxWait: ms("DEBOUNCE_MAX_WAIT_MS", 60_000, 1),
}).pipe(
  Config.mapOrFail(({ maxWait, window }) =>
    allChecks({ debounceWindow: toMs(window), debounceMaxWait: toMs(maxWait) }, [
      ordered(window, maxWait, false),
    ]),
  ),
)

const retry = Config.all({
  initial: ms("RETRY_INITIAL_BACKOFF_MS", 1_000, 1),
  max: ms("RETRY_MAX_BACKOFF_MS", 30_000, 1),
}).pipe(
  Config.mapOrFail(({ initial, max }) =>
    allChecks({ retryInitialBackoff: toMs(initial), retryMaxBackoff: toMs(max) }, [
      ordered(initial, max, false),
    ]),
  ),
)

const resourceTypes = Config.all({
  watch: readWithDefault("WATCH_RESOURCE_TYPES", parseResourceTypeList, ""),
  exclude: readWithDefault(
    "EXCLUDE_RESOURCE_TYPES",
    parseResourceTypeList,
    DEFAULT_EXCLUDE_RESOURCE_TYPES.join(","),
  ),
}).pipe(
  Config.map(({ exclude, watch }) => ({
    watchResourceTypes: watch.value,
    excludeResourceTypes: exclude.value,
    warnings:
      watch.value.length > 0 && exclude.explicit && exclude.value.length > 0
        ? [
            "EXCLUDE_RESOURCE_TYPES is ignored because WATCH_RESOURCE_TYPES is set: the allowlist wins " +
              "(as in the Go controller)",
          ]
        : [],
  })),
)

const bindAddresses = Config.all({
  api: readWithDefault("API_BIND_ADDRESS", parseBindAddress, ":8082"),
  health: readWithDefault("HEALTH_PROBE_BIND_ADDRESS", parseBindAddress, ":8081"),
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

const leaderElection = Config.all({
  enabled: readWithDefault("LEADER_ELECTION", parseBoolean, "false"),
  id: readWithDefault("LEADER_ELECTION_ID", parseDns1123Subdomain, "k8s-vectordb-sync"),
  namespace: readOptional("LEADER_ELECTION_NAMESPACE", parseDns1123Label),
  lease: ms("LEADER_ELECTION_LEASE_DURATION_MS", 15_000, 1),
  renew: ms("LEADER_ELECTION_RENEW_DEADLINE_MS", 10_000, 1),
  retry: ms("LEADER_ELECTION_RETRY_PERIOD_MS", 2_000, 1),
}).pipe(
  Config.mapOrFail(({ enabled, id, lease, namespace, renew, retry }) =>
    allChecks(
      {
        enabled: enabled.value,
        id: id.value,
        namespace: namespace.value,
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
  dryRun: boolean("DRY_RUN", false),
  debounce,
  batchFlushInterval: integerMs("BATCH_FLUSH_INTERVAL_MS", 5_000, { min: 0 }),
  batchMaxSize: integer("BATCH_MAX_SIZE", 50, { min: 1, max: 10_000 }),
  resyncMinutes: integer("RESYNC_INTERVAL_MIN", 1440, { min: 0, max: MAX_RESYNC_INTERVAL_MIN }, "minutes"),
  shutdownTimeout: integerMs("SHUTDOWN_TIMEOUT_MS", 20_000, { min: 0 }),
  sendTimeout: integerMs("SEND_TIMEOUT_MS", 30_000, { min: 1 }),
  retry,
  resourceTypes,
  bindAddresses,
  logLevel: withParser("LOG_LEVEL", parseLogLevel, "info"),
  logFormat: withParser("LOG_FORMAT", parseLogFormat, "json"),
  endpointTokenFile: filePath("ENDPOINT_TOKEN_FILE"),
  endpointCaFile: filePath("ENDPOINT_CA_FILE"),
  leaderElection,
  discoveryInterval: integerMs("DISCOVERY_INTERVAL_MS", 300_000, { min: 1_000 }),
  listConcurrency: integer("LIST_CONCURRENCY", 10, { min: 1, max: 1_000 }),
  watchList: boolean("WATCH_LIST", true),
  apiServerMaxConnections: integer("API_SERVER_MAX_CONNECTIONS", 16, { min: 1, max: 1_000 }),
}).pipe(
  Config.map(
    (c): SyncConfigShape => ({
      ...c.endpoints,
      dryRun: c.dryRun,
      ...c.debounce,
      batchFlushInterval: c.batchFlushInterval,
      batchMaxSize: c.batchMaxSize,
      resyncInterval: c.resyncMinutes === 0 ? Option.none() : Option.some(Duration.minutes(c.resyncMinutes)),
      shutdownTimeout: c.shutdownTimeout,
      sendTimeout: c.sendTimeout,
      ...c.retry,
      watchResourceTypes: c.resourceTypes.watchResourceTypes,
      excludeResourceTypes: c.resourceTypes.excludeResourceTypes,
      ...c.bindAddresses,
      logLevel: c.logLevel,
      logFormat: c.logFormat,
      endpointTokenFile: c.endpointTokenFile,
      endpointCaFile: c.endpointCaFile,
      leaderElection: c.leaderElection,
      discoveryInterval: c.discoveryInterval,
      listConcurrency: c.listConcurrency,
      watchList: c.watchList,
      apiServerMaxConnections: c.apiServerMaxConnections,
      warnings: c.resourceTypes.warnings,
    }),
  ),
)

// ---------------------------------------------------------------------------------------------------
// Reference (the README table is generated from this; a test keeps them equal)
// ---------------------------------------------------------------------------------------------------

export interface ConfigVariable {
  readonly name: string
  /** The default exactly as it would be written in the environment; undefined: unset by default. */
  readonly default: string | undefined
  readonly description: string
}

const msText = (min: number) => `Integer milliseconds, ${min} to ${MAX_TIMER_MS}.`

export const configReference: ReadonlyArray<ConfigVariable> = [
  {
    name: "INSTANCES_ENDPOINT",
    default: undefined,
    description:
      "URL the instance payloads are POSTed to; absolute http(s) URL. Unset: dry run (payloads printed on stdout).",
  },
  {
    name: "REST_ENDPOINT",
    default: undefined,
    description:
      "Alias of `INSTANCES_ENDPOINT` (the Go controller's name). Setting both to different URLs is an error.",
  },
  {
    name: "CAPABILITIES_ENDPOINT",
    default: undefined,
    description:
      "URL the CRD capability payloads are POSTed to; absolute http(s) URL. Unset: no capability sync.",
  },
  {
    name: "DRY_RUN",
    default: "false",
    description:
      "Print payloads as JSON lines on stdout instead of sending them, even if an endpoint is set. `true`, `false`, `1` or `0`.",
  },
  {
    name: "DEBOUNCE_WINDOW_MS",
    default: "10000",
    description: `Quiet time after an object's last change before its record is sent. ${msText(0)}`,
  },
  {
    name: "DEBOUNCE_MAX_WAIT_MS",
    default: "60000",
    description: `Longest an object that keeps changing waits before it is sent anyway. ${msText(1)} At least \`DEBOUNCE_WINDOW_MS\`.`,
  },
  {
    name: "BATCH_FLUSH_INTERVAL_MS",
    default: "5000",
    description: `Longest a ready entry waits for others to share its request. ${msText(0)}`,
  },
  {
    name: "BATCH_MAX_SIZE",
    default: "50",
    description: "Most entries (upserts plus deletes) in one request. Integer, 1 to 10000.",
  },
  {
    name: "RESYNC_INTERVAL_MIN",
    default: "1440",
    description: `Minutes between full resyncs; \`0\` disables them. Integer, 0 to ${MAX_RESYNC_INTERVAL_MIN}.`,
  },
  {
    name: "SHUTDOWN_TIMEOUT_MS",
    default: "20000",
    description: `Time allowed on SIGTERM/SIGINT to flush everything pending. ${msText(0)} Keep it below the pod's grace period.`,
  },
  {
    name: "SEND_TIMEOUT_MS",
    default: "30000",
    description: `Timeout of one HTTP request to a receiver (a timeout is retried). ${msText(1)}`,
  },
  {
    name: "RETRY_INITIAL_BACKOFF_MS",
    default: "1000",
    description: `First delay before retrying a failed request; doubles on each failure. ${msText(1)}`,
  },
  {
    name: "RETRY_MAX_BACKOFF_MS",
    default: "30000",
    description: `Cap of the retry delay. ${msText(1)} At least \`RETRY_INITIAL_BACKOFF_MS\`.`,
  },
  {
    name: "WATCH_RESOURCE_TYPES",
    default: undefined,
    description:
      "Allowlist of resource types, comma-separated, each `plural` or `plural.group` (e.g. `deployments,certificates.cert-manager.io`). Unset: every type. When set, `EXCLUDE_RESOURCE_TYPES` is ignored.",
  },
  {
    name: "EXCLUDE_RESOURCE_TYPES",
    default: DEFAULT_EXCLUDE_RESOURCE_TYPES.join(","),
    description:
      "Blocklist of resource types, same form as `WATCH_RESOURCE_TYPES`; used only when no allowlist is set. `,` excludes nothing.",
  },
  {
    name: "API_BIND_ADDRESS",
    default: ":8082",
    description:
      "Listen address of the API server (`POST /api/v1/resync`). `[host]:port`, host optional (empty: all interfaces), IPv6 in brackets, port 0 to 65535.",
  },
  {
    name: "HEALTH_PROBE_BIND_ADDRESS",
    default: ":8081",
    description:
      "Listen address of `/healthz` and `/readyz`; same form as `API_BIND_ADDRESS`, on a different port.",
  },
  {
    name: "LOG_LEVEL",
    default: "info",
    description: "Least severe level logged: `debug`, `info`, `warn` or `error` (any case).",
  },
  {
    name: "LOG_FORMAT",
    default: "json",
    description: "`json` (one JSON object per line) or `pretty` (readable, for a terminal).",
  },
  {
    name: "ENDPOINT_TOKEN_FILE",
    default: undefined,
    description:
      "Path of a file holding a bearer token sent to the receivers (the token itself is not an environment variable). Unset: no `Authorization` header.",
  },
  {
    name: "ENDPOINT_CA_FILE",
    default: undefined,
    description: "Path of a PEM CA bundle trusted for HTTPS receivers, in addition to the system roots.",
  },
  {
    name: "LEADER_ELECTION",
    default: "false",
    description:
      "Run several replicas with one active leader (a `coordination.k8s.io/v1` Lease). `true`, `false`, `1` or `0`.",
  },
  {
    name: "LEADER_ELECTION_ID",
    default: "k8s-vectordb-sync",
    description: "Name of the Lease; a DNS-1123 name (lowercase letters, digits, `-`, `.`).",
  },
  {
    name: "LEADER_ELECTION_NAMESPACE",
    default: undefined,
    description: "Namespace of the Lease; a DNS-1123 label. Unset: the namespace the pod runs in.",
  },
  {
    name: "LEADER_ELECTION_LEASE_DURATION_MS",
    default: "15000",
    description: `How long a standby waits before taking over a lease that was not renewed. ${msText(1)} Greater than the renew deadline.`,
  },
  {
    name: "LEADER_ELECTION_RENEW_DEADLINE_MS",
    default: "10000",
    description: `How long the leader keeps trying to renew before it stops. ${msText(1)} Greater than the retry period.`,
  },
  {
    name: "LEADER_ELECTION_RETRY_PERIOD_MS",
    default: "2000",
    description: `Interval between attempts to acquire or renew the lease. ${msText(1)}`,
  },
  {
    name: "DISCOVERY_INTERVAL_MS",
    default: "300000",
    description: `Interval of the periodic API discovery that starts and stops watches for new or removed types. ${msText(1000)}`,
  },
  {
    name: "LIST_CONCURRENCY",
    default: "10",
    description:
      "Most LIST requests to the API server in flight at once (start-up, relists, resync); bounds the load of starting with a thousand types. Integer, 1 to 1000.",
  },
  {
    name: "WATCH_LIST",
    default: "true",
    description:
      "Start each watch with a streaming initial list (`sendInitialEvents`, one request per type) where the API server offers it; `false` lists with paginated LISTs, then watches. `true`, `false`, `1` or `0`.",
  },
  {
    name: "API_SERVER_MAX_CONNECTIONS",
    default: "16",
    description:
      "Most HTTP/2 connections to the API server. Each carries up to the server's stream limit less a margin (90 on kube-apiserver), so 16 hold 1,440 watches; raise it for more watched types than that. Integer, 1 to 1000.",
  },
]

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

/**
 * One line per problem, `NAME: got "value", expected ...`, in the order the variables are read,
 * duplicates removed. Handles any `ConfigError`, including Effect's own messages.
 */
export const formatConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const where = (path: ReadonlyArray<string>) => (path.length === 0 ? "configuration" : path.join("_"))
  const lines = ConfigError.reduceWithContext<undefined, Array<string>>(error, undefined, {
    andCase: (_, left, right) => [...left, ...right],
    orCase: (_, left, right) => [...left, ...right],
    invalidDataCase: (_, path, message) => [`${where(path)}: ${message}`],
    missingDataCase: (_, path, message) => [`${where(path)}: ${message}`],
    sourceUnavailableCase: (_, path, message) => [`${where(path)}: could not be read: ${message}`],
    unsupportedCase: (_, path, message) => [`${where(path)}: ${message}`],
  })
  return [...new Set(lines)]
}

/** The configuration could not be read; `problems` holds one line per bad variable. */
export class ConfigValidationError extends Data.TaggedError("ConfigValidationError")<{
  readonly cause: ConfigError.ConfigError
  readonly problems: ReadonlyArray<string>
}> {
  static fromConfigError(cause: ConfigError.ConfigError): ConfigValidationError {
    return new ConfigValidationError({ cause, problems: formatConfigError(cause) })
  }
  override get message(): string {
    return `invalid configuration:\n${this.problems.join("\n")}`
  }
}

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
