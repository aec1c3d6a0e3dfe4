/**
 * The record the receiver should hold for an object, written from the payload contract (README,
 * "Payload contract") and sharing no code with `src/`: the convergence and fault tests compare the
 * receiver with this, so a drift of the controller's own extraction shows up as a difference
 * instead of being reproduced by the check.
 *
 * Keep it literal. Every rule below is a sentence of the contract, not a call into the product.
 */

/** A watched type as the test knows it: the version is the one discovery prefers, stated by the test. */
export interface OracleType {
  /** `""` for the core group. */
  readonly group: string
  /** The group's preferred version (the test states it; discovery must agree). */
  readonly version: string
  readonly kind: string
  readonly plural: string
}

/** What a list answer carries per object (full objects or PartialObjectMetadata alike). */
export interface OracleMetadata {
  readonly name: string
  readonly namespace?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
  readonly creationTimestamp: string
}

/** The contract's record, declared here rather than imported so the oracle owns its shape. */
export interface ExpectedRecord {
  readonly id: string
  readonly namespace: string
  readonly name: string
  readonly kind: string
  readonly apiVersion: string
  readonly apiGroup: string
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  readonly createdAt: string
}

/** The contract's list, copied out by hand: annotations with these prefixes are never synced. */
export const CONTRACT_DROPPED_ANNOTATION_PREFIXES = [
  "kubectl.kubernetes.io/",
  "meta.helm.sh/",
  "helm.sh/",
  "deployment.kubernetes.io/",
  "control-plane.alpha.kubernetes.io/",
  "kubernetes.io/",
] as const

/**
 * `ANNOTATION_KEYS` / `LABEL_KEYS` as the README states them, with their own literal matcher: a
 * comma-separated list of keys or globs, items trimmed, empty items ignored; `*` matches any run of
 * characters except `/`; the single value `description` means `description` and `*` + `/description`.
 */
export interface OracleKeySettings {
  /** The variable's text; undefined: unset. */
  readonly annotationKeys?: string | undefined
  readonly labelKeys?: string | undefined
}

/** Does `glob` match all of `key`? Character by character, a `*` trying every length that has no `/`. */
const globMatches = (glob: string, key: string): boolean => {
  if (glob === "") return key === ""
  if (glob[0] === "*") {
    for (let taken = 0; taken <= key.length; taken++) {
      if (globMatches(glob.slice(1), key.slice(taken))) return true
      if (key[taken] === "/") return false
    }
    return false
  }
  return key !== "" && key[0] === glob[0] && globMatches(glob.slice(1), key.slice(1))
}

const patternsOf = (text: string): ReadonlyArray<string> => {
  const items = text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
  return items.length === 1 && items[0] === "description" ? ["description", "*/description"] : items
}

const keepKey = (setting: string | undefined, key: string, unset: (key: string) => boolean): boolean =>
  setting === undefined ? unset(key) : patternsOf(setting).some((glob) => globMatches(glob, key))

/**
 * RFC 3339 in UTC with whole seconds: `2026-02-20T10:00:00Z`. The API server writes timestamps in
 * exactly that form; anything else (fractions, offsets) is converted and the fraction cut.
 */
const utcWholeSeconds = (timestamp: string): string => {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(timestamp)) return timestamp
  const millis = Date.parse(timestamp)
  if (Number.isNaN(millis)) throw new Error(`oracle: not a timestamp: ${timestamp}`)
  const d = new Date(Math.floor(millis / 1000) * 1000)
  const two = (n: number) => String(n).padStart(2, "0")
  return (
    `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}` +
    `T${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}Z`
  )
}

export const expectedRecord = (
  type: OracleType,
  metadata: OracleMetadata,
  settings: OracleKeySettings = {},
): ExpectedRecord => {
  const apiVersion = type.group === "" ? type.version : `${type.group}/${type.version}`
  const namespace =
    metadata.namespace === undefined || metadata.namespace === "" ? "_cluster" : metadata.namespace
  const annotations: Record<string, string> = {}
  const toolKey = (key: string) => CONTRACT_DROPPED_ANNOTATION_PREFIXES.some((p) => key.startsWith(p))
  for (const [key, value] of Object.entries(metadata.annotations ?? {})) {
    if (keepKey(settings.annotationKeys, key, (k) => !toolKey(k))) annotations[key] = value
  }
  const labels: Record<string, string> = {}
  for (const [key, value] of Object.entries(metadata.labels ?? {})) {
    if (keepKey(settings.labelKeys, key, () => true)) labels[key] = value
  }
  return {
    id: `${namespace}/${apiVersion}/${type.kind}/${metadata.name}`,
    namespace,
    name: metadata.name,
    kind: type.kind,
    apiVersion,
    apiGroup: type.group,
    labels,
    annotations,
    createdAt: utcWholeSeconds(metadata.creationTimestamp),
  }
}

/**
 * What differs between a record the receiver holds and the expected one, field by field (key order
 * in labels and annotations is not part of the contract); empty when they agree.
 */
export const recordDifferences = (expected: ExpectedRecord, actual: unknown): ReadonlyArray<string> => {
  if (typeof actual !== "object" || actual === null) return [`not an object: ${JSON.stringify(actual)}`]
  const got = actual as Record<string, unknown>
  const out: Array<string> = []
  const fields = Object.keys(expected) as Array<keyof ExpectedRecord>
  for (const key of Object.keys(got)) {
    if (!fields.includes(key as keyof ExpectedRecord)) out.push(`unexpected field ${key}`)
  }
  for (const field of fields) {
    const want = expected[field]
    const have = got[field]
    if (typeof want === "string") {
      if (have !== want) out.push(`${field}: ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`)
    } else if (canonical(have) !== canonical(want)) {
      out.push(`${field}: ${canonical(have)}, expected ${canonical(want)}`)
    }
  }
  return out
}

const canonical = (value: unknown): string =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? JSON.stringify(
        Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      )
    : JSON.stringify(value)
