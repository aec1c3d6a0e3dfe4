/**
 * Which label and annotation keys a record keeps (`LABEL_KEYS`, `ANNOTATION_KEYS`). The receiver
 * embeds every value it is sent, so what is forwarded decides search quality.
 *
 * A filter is compiled once from the configured patterns and then only called per key: exact keys
 * are a Set lookup, the globs one regular expression built at compile time.
 *
 * Patterns: a key (`team.io/owner`) or a glob in which `*` stands for any run of characters except
 * `/`. A key is `[prefix/]name`, so the slash says whether a pattern wants prefixed keys: `*` is every
 * unprefixed key, `*\/*` every prefixed one, `*\/description` a `description` under any prefix.
 */
import { Option } from "effect"

/** Keeps a key (true) or drops it. */
export type KeyFilter = (key: string) => boolean

/**
 * Annotations that tools write for their own bookkeeping (last-applied configuration, Helm release
 * names, revision counters) carry no meaning for someone asking what runs here, and some are huge.
 */
export const DROPPED_ANNOTATION_PREFIXES: ReadonlyArray<string> = [
  "kubectl.kubernetes.io/",
  "meta.helm.sh/",
  "helm.sh/",
  "deployment.kubernetes.io/",
  "control-plane.alpha.kubernetes.io/",
  "kubernetes.io/",
]

/** The one-word setting that keeps what cluster-whisperer keeps when it indexes by itself. */
export const DESCRIPTION = "description"
const DESCRIPTION_PATTERNS: ReadonlyArray<string> = [DESCRIPTION, `*/${DESCRIPTION}`]

export const everyKey: KeyFilter = () => true

/** The annotations' default: everything but the tools' bookkeeping prefixes. */
export const withoutToolAnnotations: KeyFilter = (key) =>
  !DROPPED_ANNOTATION_PREFIXES.some((prefix) => key.startsWith(prefix))

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const globSource = (glob: string) => glob.split("*").map(escapeRegExp).join("[^/]*")

/**
 * Keeps exactly the keys the patterns match. The single pattern `description` means `description`
 * and `*\/description`; inside a longer list `description` is just that key. No pattern: no key.
 */
export const fromPatterns = (patterns: ReadonlyArray<string>): KeyFilter =>
  patternMatcher(patterns.length === 1 && patterns[0] === DESCRIPTION ? DESCRIPTION_PATTERNS : patterns)

/**
 * Matches names and globs (`*`: any run of characters except `/`), compiled once: exact names are a
 * Set lookup, every glob one regular expression. Also what namespace patterns are matched with.
 */
export const patternMatcher = (patterns: ReadonlyArray<string>): ((name: string) => boolean) => {
  const exact = new Set(patterns.filter((p) => !p.includes("*")))
  const globs = patterns.filter((p) => p.includes("*"))
  if (globs.length === 0) return (name) => exact.has(name)
  const matcher = new RegExp(`^(?:${globs.map(globSource).join("|")})$`)
  return (name) => exact.has(name) || matcher.test(name)
}

/** The filters a record is made with. */
export interface RecordKeys {
  readonly labels: KeyFilter
  readonly annotations: KeyFilter
}

/** Every label; annotations without the tools' bookkeeping (the payload contract's default). */
export const DEFAULT_RECORD_KEYS: RecordKeys = { labels: everyKey, annotations: withoutToolAnnotations }

/** From the configuration's patterns: None keeps the default of each map. */
export const recordKeys = (settings: {
  readonly labelKeys: Option.Option<ReadonlyArray<string>>
  readonly annotationKeys: Option.Option<ReadonlyArray<string>>
}): RecordKeys => ({
  labels: Option.match(settings.labelKeys, { onNone: () => everyKey, onSome: fromPatterns }),
  annotations: Option.match(settings.annotationKeys, {
    onNone: () => withoutToolAnnotations,
    onSome: fromPatterns,
  }),
})
