/**
 * The small typed parsers behind the variables of Variables.ts. A parser takes the trimmed text of
 * one variable and yields the value or, on the left, what was expected ("an integer between 1 and
 * 10"), which becomes the end of the operator's error line `NAME: got "value", expected ...`.
 */
import { isIP } from "node:net"
import { Either, LogLevel } from "effect"

/** A parser yields the value or, on the left, what was expected ("an integer between 1 and 10"). */
export type Parser<A> = (text: string) => Either.Either<A, string>

/** A listen address: `host` undefined means all interfaces. */
export interface BindAddress {
  readonly host: string | undefined
  readonly port: number
}

export type LogFormat = "json" | "pretty"

/** How `POST /api/v1/resync` authenticates its callers (see `RESYNC_AUTH`). */
export type ResyncAuthMode = "kubernetes" | "token" | "none"

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

const namespacePatternRe = /^[a-z0-9*]([-a-z0-9*]{0,61}[a-z0-9*])?$/

/**
 * A comma-separated list of namespaces, each a name or a glob where `*` matches any run of
 * characters (`dev-*`). Items are trimmed, empty items ignored, duplicates dropped.
 */
export const parseNamespacePatternList: Parser<ReadonlyArray<string>> = (text) => {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const bad = items.filter((s) => !namespacePatternRe.test(s))
  return bad.length === 0
    ? Either.right([...new Set(items)])
    : Either.left(
        "a comma-separated list of namespace names or globs (lowercase letters, digits, '-' and '*', " +
          `at most 63 characters, e.g. team-a,dev-*); not valid: ${bad.map((s) => showValue(s)).join(", ")}`,
      )
}

const LABEL_NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
const LABEL_KEY = `(${DNS_LABEL}(\\.${DNS_LABEL})*/)?${LABEL_NAME}`
const LABEL_VALUE = `(${LABEL_NAME})?`
const selectorRequirementRe = new RegExp(
  `^\\s*(?:!\\s*${LABEL_KEY}|${LABEL_KEY}\\s*(?:(?:==?|!=)\\s*${LABEL_VALUE}|\\s(?:in|notin)\\s*\\(\\s*${LABEL_VALUE}(?:\\s*,\\s*${LABEL_VALUE})*\\s*\\))?)\\s*$`,
)

/**
 * A Kubernetes label selector (`app=web,tier!=cache,env in (prod,staging),!legacy`), checked
 * against the grammar the API server accepts, so that a typo stops the process at start rather than
 * failing every watch.
 */
export const parseLabelSelector: Parser<string> = (text) => {
  // Commas separate requirements except inside the parentheses of `in (…)` and `notin (…)`.
  const requirements = text.split(/,(?![^(]*\))/)
  const bad = requirements.filter((r) => !selectorRequirementRe.test(r))
  return bad.length === 0
    ? Either.right(text)
    : Either.left(
        "a label selector such as app=web,tier!=cache,env in (prod,staging),!legacy; " +
          `not valid: ${bad.map((s) => showValue(s.trim())).join(", ")}`,
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

export const parseResyncAuthMode: Parser<ResyncAuthMode> = (text) => {
  const mode = text.toLowerCase()
  return mode === "kubernetes" || mode === "token" || mode === "none"
    ? Either.right(mode)
    : Either.left("kubernetes, token or none")
}

export const parseFilePath: Parser<string> = (text) =>
  text.includes("\0") ? Either.left("a file path") : Either.right(text)

/** Milliseconds from `min` up to the timer limit. */
export const parseMillis = (min: number): Parser<number> =>
  parseInteger({ min, max: MAX_TIMER_MS }, "milliseconds")

/** A label or annotation key, `[prefix/]name`, where `*` may stand in for any part of either side. */
const keyPatternRe = /^(?:[A-Za-z0-9.*-]+\/)?[A-Za-z0-9._*-]+$/
/** The longest key Kubernetes accepts: a 253-character prefix, `/`, a 63-character name. */
const MAX_KEY_LENGTH = 253 + 1 + 63

/**
 * A comma-separated list of label or annotation keys and globs (`*` within a key). Items are trimmed,
 * empty items ignored, duplicates dropped; case is kept (keys are case-sensitive).
 */
export const parseKeyPatternList: Parser<ReadonlyArray<string>> = (text) => {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const bad = items.filter((s) => s.length > MAX_KEY_LENGTH || !keyPatternRe.test(s))
  return bad.length === 0
    ? Either.right([...new Set(items)])
    : Either.left(
        "description, or a comma-separated list of keys or globs such as " +
          `description,team.io/*,*/owner; not valid: ${bad.map((s) => showValue(s)).join(", ")}`,
      )
}
