/**
 * Every environment variable the controller reads, declared once: its name (the key), the aliases
 * it also answers to, its default as it would be written in the environment, the parser that reads
 * it (and says what is expected when a value is malformed) and the description operators read.
 *
 * This table is the only place a default is written. Config.ts reads the variables through it, the
 * README's configuration table is generated from it (`npm run docs:config`), and the tests and the
 * Helm chart's check compare against it.
 */
import { Either } from "effect"
import {
  MAX_TIMER_MS,
  type Parser,
  parseBindAddress,
  parseBoolean,
  parseDns1123Label,
  parseDns1123Subdomain,
  parseFilePath,
  parseHttpUrl,
  parseInteger,
  parseKeyPatternList,
  parseLabelSelector,
  parseLogFormat,
  parseLogLevel,
  parseMillis,
  parseNamespacePatternList,
  parseResourceTypeList,
  parseResyncAuthMode,
} from "./Parse.js"

/** Another name a variable answers to (e.g. the Go controller's name for it). */
export interface Alias {
  readonly name: string
  readonly description: string
}

interface Declared<A> {
  readonly name: string
  readonly aliases: ReadonlyArray<Alias>
  readonly parse: Parser<A>
  /** One markdown table cell: what the variable means and the form its value takes. */
  readonly description: string
}

/** A variable with a default, used when it is unset or blank. */
export interface WithDefault<A> extends Declared<A> {
  /** The default exactly as it would be written in the environment. */
  readonly default: string
}

/** A variable that is unset by default; reading it gives an Option. */
export interface Optional<A> extends Declared<A> {
  readonly default: undefined
}

export type Variable<A> = WithDefault<A> | Optional<A>

interface Spec<A> {
  readonly default?: string
  readonly aliases?: ReadonlyArray<Alias>
  readonly parse: Parser<A>
  readonly description: string
}

type FromSpec<S> = S extends { readonly parse: Parser<infer A>; readonly default: string }
  ? WithDefault<A>
  : S extends { readonly parse: Parser<infer A> }
    ? Optional<A>
    : never

/** Names each spec after its key, so a variable's name is written once. */
const declare = <const T extends Record<string, Spec<unknown>>>(
  specs: T,
): { [K in keyof T]: FromSpec<T[K]> } =>
  Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [name, { name, aliases: [], default: undefined, ...spec }]),
  ) as { [K in keyof T]: FromSpec<T[K]> }

/** Largest `RESYNC_INTERVAL_MIN` whose duration the timer can still represent (about 24.8 days). */
export const MAX_RESYNC_INTERVAL_MIN = Math.floor(MAX_TIMER_MS / 60_000)

/** Room for the `-<n>` suffix of further parts: the name stays a valid ConfigMap name. */
const parseCheckpointName: Parser<string> = (text) =>
  Either.isRight(parseDns1123Subdomain(text)) &&
  text.length <= 240 &&
  (text.split(".").at(-1)?.length ?? 0) <= 56
    ? Either.right(text)
    : Either.left(
        "a DNS-1123 name (lowercase letters, digits, '-' and '.') of at most 240 characters, its last label at most 56",
      )

const msText = (min: number) => `Integer milliseconds, ${min} to ${MAX_TIMER_MS}.`
const BOOLEAN_TEXT = "`true`, `false`, `1` or `0`."

// The README lists the variables in this order, and an error lists bad values in it too.
export const Variables = declare({
  INSTANCES_ENDPOINT: {
    parse: parseHttpUrl,
    aliases: [
      {
        name: "REST_ENDPOINT",
        description:
          "Alias of `INSTANCES_ENDPOINT` (the Go controller's name). Setting both to different URLs is an error.",
      },
    ],
    description:
      "URL the instance payloads are POSTed to; absolute http(s) URL. Unset: dry run (payloads printed on stdout).",
  },
  CAPABILITIES_ENDPOINT: {
    parse: parseHttpUrl,
    description:
      "URL the CRD capability payloads are POSTed to; absolute http(s) URL. Unset: no capability sync.",
  },
  DRY_RUN: {
    default: "false",
    parse: parseBoolean,
    description: `Print payloads as JSON lines on stdout instead of sending them, even if an endpoint is set. ${BOOLEAN_TEXT}`,
  },
  DEBOUNCE_WINDOW_MS: {
    default: "10000",
    parse: parseMillis(0),
    description: `Quiet time after an object's last change before its record is sent. ${msText(0)}`,
  },
  DEBOUNCE_MAX_WAIT_MS: {
    default: "60000",
    parse: parseMillis(1),
    description: `Longest an object that keeps changing waits before it is sent anyway. ${msText(1)} At least \`DEBOUNCE_WINDOW_MS\`.`,
  },
  BATCH_FLUSH_INTERVAL_MS: {
    default: "5000",
    parse: parseMillis(0),
    description: `Longest a ready entry waits for others to share its request. ${msText(0)}`,
  },
  BATCH_MAX_SIZE: {
    default: "50",
    parse: parseInteger({ min: 1, max: 10_000 }),
    description: "Most entries (upserts plus deletes) in one request. Integer, 1 to 10000.",
  },
  BATCH_MAX_BYTES: {
    default: "4194304",
    parse: parseInteger({ min: 1024, max: 104_857_600 }, "bytes"),
    description:
      "Most bytes in one request body (its JSON, UTF-8). A batch stops growing before it would exceed it; a single entry larger than it is sent alone. The default, 4 MiB, stays under cluster-whisperer's 5 MiB limit. Integer, 1024 to 104857600.",
  },
  RESYNC_INTERVAL_MIN: {
    default: "1440",
    parse: parseInteger({ min: 0, max: MAX_RESYNC_INTERVAL_MIN }, "minutes"),
    description: `Minutes between full resyncs; \`0\` disables them. Integer, 0 to ${MAX_RESYNC_INTERVAL_MIN}.`,
  },
  SHUTDOWN_TIMEOUT_MS: {
    default: "20000",
    parse: parseMillis(0),
    description: `Time allowed on SIGTERM/SIGINT to flush everything pending. ${msText(0)} Keep it below the pod's grace period.`,
  },
  SEND_TIMEOUT_MS: {
    default: "30000",
    parse: parseMillis(1),
    description: `Timeout of one HTTP request to a receiver (a timeout is retried). ${msText(1)}`,
  },
  RETRY_INITIAL_BACKOFF_MS: {
    default: "1000",
    parse: parseMillis(1),
    description: `First delay before retrying a failed request; doubles on each failure. ${msText(1)}`,
  },
  RETRY_MAX_BACKOFF_MS: {
    default: "30000",
    parse: parseMillis(1),
    description: `Cap of the retry delay. ${msText(1)} At least \`RETRY_INITIAL_BACKOFF_MS\`.`,
  },
  WATCH_RESOURCE_TYPES: {
    parse: parseResourceTypeList,
    description:
      "Allowlist of resource types, comma-separated, each `plural` or `plural.group` (e.g. `deployments,certificates.cert-manager.io`). Unset: every type. When set, `EXCLUDE_RESOURCE_TYPES` is ignored.",
  },
  EXCLUDE_RESOURCE_TYPES: {
    default: "events,leases,endpointslices,componentstatuses,customresourcedefinitions",
    parse: parseResourceTypeList,
    description:
      "Blocklist of resource types, same form as `WATCH_RESOURCE_TYPES`; used only when no allowlist is set. `,` excludes nothing.",
  },
  WATCH_NAMESPACES: {
    parse: parseNamespacePatternList,
    description:
      "Namespaces whose objects are synced, comma-separated names or globs (`team-*`); cluster-scoped objects are always synced. One name without `*`: namespaced types are watched in that namespace only. Unset: every namespace.",
  },
  EXCLUDE_NAMESPACES: {
    parse: parseNamespacePatternList,
    description:
      "Namespaces whose objects are not synced, same form as `WATCH_NAMESPACES`, applied after it (`dev-*,kube-system`). Unset: none.",
  },
  LABEL_SELECTOR: {
    parse: parseLabelSelector,
    description:
      "A Kubernetes label selector the API server applies to every watch (`app.kubernetes.io/part-of=shop,tier!=cache`); an object that stops matching is deleted downstream. Unset: every object.",
  },
  API_BIND_ADDRESS: {
    default: ":8082",
    parse: parseBindAddress,
    description:
      "Listen address of the API server (`POST /api/v1/resync`). `[host]:port`, host optional (empty: all interfaces), IPv6 in brackets, port 0 to 65535.",
  },
  HEALTH_PROBE_BIND_ADDRESS: {
    default: ":8081",
    parse: parseBindAddress,
    description:
      "Listen address of `/healthz` and `/readyz`; same form as `API_BIND_ADDRESS`, on a different port.",
  },
  RESYNC_AUTH: {
    parse: parseResyncAuthMode,
    description:
      "How `POST /api/v1/resync` authenticates its callers: `kubernetes` (the caller's bearer token passes a `TokenReview`, then a `SubjectAccessReview` for verb `post` on the non-resource URL `/api/v1/resync`), `token` (the bearer token in `RESYNC_TOKEN_FILE`) or `none` (open to anyone who reaches the port, as the Go controller was). Unset: `token` when `RESYNC_TOKEN_FILE` is set, else `kubernetes`.",
  },
  RESYNC_TOKEN_FILE: {
    parse: parseFilePath,
    description:
      "Path of a file holding the bearer token `POST /api/v1/resync` requires (re-read on every request, so a rotated Secret applies at once). Needs `RESYNC_AUTH` unset or `token`.",
  },
  RESYNC_MIN_INTERVAL_MS: {
    default: "60000",
    parse: parseMillis(0),
    description: `Least time between two resyncs started by \`POST /api/v1/resync\`; a request within it joins the resync running, if any, or is answered 429 with \`Retry-After\`. ${msText(0)} \`0\`: no limit.`,
  },
  LOG_LEVEL: {
    default: "info",
    parse: parseLogLevel,
    description: "Least severe level logged: `debug`, `info`, `warn` or `error` (any case).",
  },
  LOG_FORMAT: {
    default: "json",
    parse: parseLogFormat,
    description: "`json` (one JSON object per line) or `pretty` (readable, for a terminal).",
  },
  ENDPOINT_TOKEN_FILE: {
    parse: parseFilePath,
    description:
      "Path of a file holding a bearer token sent to the receivers (the token itself is not an environment variable). Unset: no `Authorization` header.",
  },
  ENDPOINT_CA_FILE: {
    parse: parseFilePath,
    description: "Path of a PEM CA bundle trusted for HTTPS receivers, in addition to the system roots.",
  },
  LEADER_ELECTION: {
    default: "false",
    parse: parseBoolean,
    description: `Run several replicas with one active leader (a \`coordination.k8s.io/v1\` Lease). ${BOOLEAN_TEXT}`,
  },
  LEADER_ELECTION_ID: {
    default: "k8s-vectordb-sync",
    parse: parseDns1123Subdomain,
    description: "Name of the Lease; a DNS-1123 name (lowercase letters, digits, `-`, `.`).",
  },
  LEADER_ELECTION_NAMESPACE: {
    parse: parseDns1123Label,
    description: "Namespace of the Lease; a DNS-1123 label. Unset: the namespace the pod runs in.",
  },
  LEADER_ELECTION_LEASE_DURATION_MS: {
    default: "15000",
    parse: parseMillis(1),
    description: `How long a standby waits before taking over a lease that was not renewed. ${msText(1)} Greater than the renew deadline.`,
  },
  LEADER_ELECTION_RENEW_DEADLINE_MS: {
    default: "10000",
    parse: parseMillis(1),
    description: `How long the leader keeps trying to renew before it stops. ${msText(1)} Greater than the retry period.`,
  },
  LEADER_ELECTION_RETRY_PERIOD_MS: {
    default: "2000",
    parse: parseMillis(1),
    description: `Interval between attempts to acquire or renew the lease. ${msText(1)}`,
  },
  DISCOVERY_INTERVAL_MS: {
    default: "300000",
    parse: parseMillis(1000),
    description: `Interval of the periodic API discovery that starts and stops watches for new or removed types. ${msText(1000)}`,
  },
  LIST_CONCURRENCY: {
    default: "10",
    parse: parseInteger({ min: 1, max: 1_000 }),
    description:
      "Most LIST requests to the API server in flight at once (start-up, relists, resync); bounds the load of starting with a thousand types. Integer, 1 to 1000.",
  },
  WATCH_LIST: {
    default: "true",
    parse: parseBoolean,
    description: `Start each watch with a streaming initial list (\`sendInitialEvents\`, one request per type) where the API server offers it; \`false\` lists with paginated LISTs, then watches. ${BOOLEAN_TEXT}`,
  },
  API_SERVER_MAX_CONNECTIONS: {
    default: "16",
    parse: parseInteger({ min: 1, max: 1_000 }),
    description:
      "Most HTTP/2 connections to the API server. Each carries up to the server's stream limit less a margin (90 on kube-apiserver), so 16 hold 1,440 watches; raise it for more watched types than that. Integer, 1 to 1000.",
  },
  ANNOTATION_KEYS: {
    parse: parseKeyPatternList,
    description:
      "Annotations forwarded to the receiver. Unset: all but the tools' bookkeeping (keys starting `kubectl.kubernetes.io/`, `meta.helm.sh/`, `helm.sh/`, `deployment.kubernetes.io/`, `control-plane.alpha.kubernetes.io/`, `kubernetes.io/`). `description`: only `description` and `*/description`. Otherwise a comma-separated list of keys or globs, where `*` matches any characters except `/` (`team.io/*`, `*/owner`; `*,*/*` is every key); `,` forwards none.",
  },
  LABEL_KEYS: {
    parse: parseKeyPatternList,
    description:
      "Labels forwarded to the receiver, in the form of `ANNOTATION_KEYS` (`description` included). Unset: every label.",
  },
  ENDPOINT_HEADERS_FILE: {
    parse: parseFilePath,
    description:
      "Path of a file of extra request headers for the receivers, one `Name: value` per line (`#` comments and blank lines ignored), re-read before each request; values are never logged. It may not set `Content-Type`, `Content-Length`, `Host`, `Transfer-Encoding` or `Connection`, nor `Authorization` when `ENDPOINT_TOKEN_FILE` is set. A missing or invalid file stops start-up; later, the last valid headers are kept and a warning names the file and line.",
  },
  CHECKPOINT: {
    default: "true",
    parse: parseBoolean,
    description: `Keep a checkpoint of the ids the receiver holds in ConfigMaps of the controller's namespace, so that objects deleted while no controller ran are deleted downstream after a restart (see "Failure behaviour"). Off in a dry run. ${BOOLEAN_TEXT}`,
  },
  CHECKPOINT_NAME: {
    default: "k8s-vectordb-sync-checkpoint",
    parse: parseCheckpointName,
    description:
      "Name of the checkpoint's ConfigMap, in the namespace the pod runs in (`default` outside a cluster); further parts are named `<name>-1`, `<name>-2`, …. A DNS-1123 name of at most 240 characters (last label at most 56).",
  },
  CHECKPOINT_PART_BYTES: {
    default: "786432",
    parse: parseInteger({ min: 1024, max: 1_000_000 }, "bytes"),
    description:
      "Most compressed bytes in one checkpoint ConfigMap (Kubernetes refuses objects over 1 MiB); a larger checkpoint is split. Integer, 1024 to 1000000; lower it only to test splitting.",
  },
})

/** Every declared variable, in declaration order. */
export const variables: ReadonlyArray<Variable<unknown>> = Object.values(Variables)

/** One row of the reference: a variable or an alias, as operators see it. */
export interface ConfigVariable {
  readonly name: string
  /** The default exactly as it would be written in the environment; undefined: unset by default. */
  readonly default: string | undefined
  readonly description: string
}

/** Every name the controller reads, aliases after their variable (the README table's rows). */
export const configReference: ReadonlyArray<ConfigVariable> = variables.flatMap((v) => [
  { name: v.name, default: v.default, description: v.description },
  ...v.aliases.map((a) => ({ name: a.name, default: undefined, description: a.description })),
])

/** The value a variable's default parses to (what an unset variable reads as). */
export const defaultValue = <A>(variable: WithDefault<A>): A =>
  Either.getOrThrowWith(
    variable.parse(variable.default),
    (expected) => new Error(`${variable.name}: the declared default does not parse, expected ${expected}`),
  )

export const DEFAULT_EXCLUDE_RESOURCE_TYPES: ReadonlyArray<string> = defaultValue(
  Variables.EXCLUDE_RESOURCE_TYPES,
)
