/**
 * A strict reader of the Prometheus text format for tests: every line must be a comment or a
 * well-formed sample, every sample must belong to a declared family, histogram buckets must be
 * cumulative. Returns the samples so that tests can compare values.
 */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/

export const parsePrometheusText = (text: string): ReadonlyArray<Sample> => {
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    if (line.startsWith("# HELP ")) continue
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ")
      if (!name || !type || !["counter", "gauge", "histogram", "summary", "untyped"].includes(type)) {
        throw new Error(`bad TYPE line: ${line}`)
      }
      types.set(name, type)
      continue
    }
    const match = SAMPLE.exec(line)
    if (!match) throw new Error(`not a sample line: ${line}`)
    const name = match[1]!
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "")
    if (!types.has(family)) throw new Error(`sample without a TYPE: ${line}`)
    const labels: Record<string, string> = {}
    if (match[3]) {
      for (const part of match[3].split(/,(?=[a-zA-Z_])/)) {
        const label = LABEL.exec(part)
        if (!label) throw new Error(`bad label ${part} in ${line}`)
        labels[label[1]!] = label[2]!
      }
    }
    const raw = match[4]!
    samples.push({ name, labels, value: raw === "+Inf" ? Number.POSITIVE_INFINITY : Number(raw) })
  }
  // Buckets of one series never decrease as `le` grows.
  const buckets = new Map<string, Array<Sample>>()
  for (const sample of samples.filter((s) => s.name.endsWith("_bucket"))) {
    const { le: _le, ...rest } = sample.labels
    const key = `${sample.name}${JSON.stringify(rest)}`
    buckets.set(key, [...(buckets.get(key) ?? []), sample])
  }
  for (const [key, series] of buckets) {
    const sorted = [...series].sort((a, b) => Number(a.labels.le) - Number(b.labels.le))
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.value < sorted[i - 1]!.value) throw new Error(`buckets of ${key} are not cumulative`)
    }
  }
  return samples
}

export const sampleValue = (
  samples: ReadonlyArray<Sample>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
