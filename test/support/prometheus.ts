/**
 * A strict reader of the Prometheus text exposition format (0.0.4) for tests, written from the
 * format's rules rather than from the renderer:
 * - lines end with `\n`; `# HELP name text` (text escapes `\\` and `\n`) and `# TYPE name type`
 *   come at most once per family, TYPE before the family's first sample;
 * - a family's samples are contiguous; a histogram family holds `_bucket` samples with an `le`
 *   label, one `le="+Inf"` bucket equal to `_count`, and `_sum`; buckets are cumulative;
 * - label values escape backslash, double quote and newline as `\\`, `\"`, `\n` (nothing else);
 * - no series (name and label set) appears twice.
 * Returns the samples, label values unescaped, so that tests can compare values.
 */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: string
  readonly help: string | undefined
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/
const VALUE = /^(?:[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf)$/

const unescapeHelp = (text: string, line: string): string =>
  text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\"
    if (c === "n") return "\n"
    throw new Error(`bad escape \\${c} in HELP: ${line}`)
  })

/** `{a="x",b="y"}` at the start of `rest`: the labels and what follows the closing brace. */
const readLabels = (rest: string, line: string): { labels: Record<string, string>; after: string } => {
  const labels: Record<string, string> = {}
  let i = 1
  for (;;) {
    if (rest[i] === "}") return { labels, after: rest.slice(i + 1) }
    const name = LABEL_NAME.exec(rest.slice(i))?.[0]
    if (name === undefined) throw new Error(`bad label name in ${line}`)
    if (name in labels) throw new Error(`label ${name} twice in ${line}`)
    i += name.length
    if (rest.slice(i, i + 2) !== '="') throw new Error(`label ${name} without ="…" in ${line}`)
    i += 2
    let value = ""
    for (;;) {
      const c = rest[i]
      if (c === undefined) throw new Error(`unterminated label value in ${line}`)
      if (c === "\n") throw new Error(`raw newline in a label value: ${line}`)
      if (c === '"') break
      if (c === "\\") {
        const next = rest[i + 1]
        if (next === "\\") value += "\\"
        else if (next === '"') value += '"'
        else if (next === "n") value += "\n"
        else throw new Error(`bad escape \\${next ?? ""} in a label value: ${line}`)
        i += 2
      } else {
        value += c
        i++
      }
    }
    labels[name] = value
    i++
    if (rest[i] === ",") i++
    else if (rest[i] !== "}") throw new Error(`expected , or } after label ${name} in ${line}`)
  }
}

export const parsePrometheusExposition = (
  text: string,
  options: {
    /**
     * Accept a series twice (and skip the histogram checks). Only for controllers run inside the
     * vitest process: each test file imports its own copy of `effect`, all copies share one global
     * metric registry, and histogram keys of two copies do not compare equal, so a histogram shows
     * once per file that used it. A controller process (one copy) never does that; process.test.ts
     * reads its /metrics strictly.
     */
    readonly allowDuplicateSeries?: boolean
  } = {},
): { readonly samples: ReadonlyArray<Sample>; readonly families: ReadonlyMap<string, Family> } => {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the exposition does not end with a newline")
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  const helps = new Map<string, string>()
  const seenSeries = new Set<string>()
  const finished = new Set<string>()
  let current: string | undefined
  const familyOf = (name: string) => {
    if (types.has(name)) return name
    const base = name.replace(/_(bucket|sum|count)$/, "")
    return types.get(base) === "histogram" || types.get(base) === "summary" ? base : name
  }
  const enter = (family: string, line: string) => {
    if (current === family) return
    if (finished.has(family)) throw new Error(`family ${family} is not contiguous: ${line}`)
    if (current !== undefined) finished.add(current)
    current = family
  }
  for (const line of text.split("\n").slice(0, -1)) {
    if (line.startsWith("# HELP ")) {
      const [name, ...words] = line.slice(7).split(" ")
      if (!name || !NAME.test(name)) throw new Error(`bad HELP line: ${line}`)
      if (helps.has(name)) throw new Error(`second HELP for ${name}`)
      enter(name, line)
      helps.set(name, unescapeHelp(words.join(" "), line))
      continue
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type, ...extra] = line.slice(7).split(" ")
      if (
        !name ||
        !type ||
        extra.length > 0 ||
        !["counter", "gauge", "histogram", "summary", "untyped"].includes(type)
      ) {
        throw new Error(`bad TYPE line: ${line}`)
      }
      if (types.has(name)) throw new Error(`second TYPE for ${name}`)
      enter(name, line)
      types.set(name, type)
      continue
    }
    if (line.startsWith("#") || line === "") continue
    const name = NAME.exec(line)?.[0]
    if (name === undefined) throw new Error(`not a sample line: ${line}`)
    let rest = line.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith("{")) ({ labels, after: rest } = readLabels(rest, line))
    const [, raw, timestamp, ...more] = rest.split(" ")
    if (!rest.startsWith(" ") || raw === undefined || !VALUE.test(raw) || more.length > 0) {
      throw new Error(`bad sample value in ${line}`)
    }
    if (timestamp !== undefined && !/^-?[0-9]+$/.test(timestamp)) throw new Error(`bad timestamp in ${line}`)
    const family = familyOf(name)
    if (!types.has(family)) throw new Error(`sample without a TYPE: ${line}`)
    enter(family, line)
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seenSeries.has(series) && options.allowDuplicateSeries !== true)
      throw new Error(`series twice: ${line}`)
    seenSeries.add(series)
    const value =
      raw === "+Inf" ? Number.POSITIVE_INFINITY : raw === "-Inf" ? Number.NEGATIVE_INFINITY : Number(raw)
    samples.push({ name, labels, value })
  }
  for (const [family, type] of types) {
    if (type === "histogram" && options.allowDuplicateSeries !== true) checkHistogram(family, samples)
  }
  const families = new Map<string, Family>()
  for (const [name, type] of types) families.set(name, { name, type, help: helps.get(name) })
  return { samples, families }
}

/** Per label set: cumulative buckets, one `+Inf` bucket equal to `_count`, and a `_sum`. */
const checkHistogram = (family: string, samples: ReadonlyArray<Sample>) => {
  const key = (labels: Readonly<Record<string, string>>) => JSON.stringify(Object.entries(labels).sort())
  const series = new Map<string, Array<Sample>>()
  for (const sample of samples.filter((s) => s.name === `${family}_bucket`)) {
    const { le, ...rest } = sample.labels
    if (le === undefined) throw new Error(`${family}_bucket without le`)
    series.set(key(rest), [...(series.get(key(rest)) ?? []), sample])
  }
  const counts = samples.filter((s) => s.name === `${family}_count`)
  const sums = samples.filter((s) => s.name === `${family}_sum`)
  if (counts.length !== series.size || sums.length !== series.size) {
    throw new Error(`${family}: ${series.size} bucket series, ${counts.length} _count, ${sums.length} _sum`)
  }
  for (const [labels, buckets] of series) {
    const bound = (s: Sample) => (s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(s.labels.le))
    const sorted = [...buckets].sort((a, b) => bound(a) - bound(b))
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.value < sorted[i - 1]!.value)
        throw new Error(`buckets of ${family}${labels} are not cumulative`)
    }
    const inf = buckets.filter((b) => b.labels.le === "+Inf")
    if (inf.length !== 1) throw new Error(`${family}${labels}: ${inf.length} +Inf buckets`)
    const count = counts.find((c) => key(c.labels) === labels)
    if (count === undefined || count.value !== inf[0]!.value) {
      throw new Error(
        `${family}${labels}: _count ${count?.value} differs from the +Inf bucket ${inf[0]!.value}`,
      )
    }
    if (!sums.some((s) => key(s.labels) === labels)) throw new Error(`${family}${labels}: no _sum`)
  }
}

export const parsePrometheusText = (
  text: string,
  options: { readonly allowDuplicateSeries?: boolean } = {},
): ReadonlyArray<Sample> => parsePrometheusExposition(text, options).samples

export const sampleValue = (
  samples: ReadonlyArray<Sample>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
