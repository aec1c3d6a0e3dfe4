/**
 * Effect's metrics in the Prometheus text exposition format (version 0.0.4), for `/metrics`. Kept
 * to what the controller's metrics use: counters, gauges and histograms.
 */
import { MetricState, Option } from "effect"
import type { MetricPair } from "effect/MetricPair"

export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const labels = (pairs: ReadonlyArray<readonly [string, string]>) =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`

const number = (value: number | bigint) => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

/** Renders a snapshot; series of one name are grouped under one `# HELP`/`# TYPE` header. */
export const render = (snapshot: ReadonlyArray<MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: Option.Option<string>) => {
    let found = families.get(name)
    if (found === undefined) {
      found = { type, help: Option.getOrElse(help, () => name), lines: [] }
      families.set(name, found)
    }
    return found
  }
  for (const pair of snapshot) {
    const key = pair.metricKey
    const tags = key.tags.map((tag) => [tag.key, tag.value] as const)
    const state: unknown = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(key.name, "counter", key.description).lines.push(
        `${key.name}${labels(tags)} ${number(state.count)}`,
      )
    } else if (MetricState.isGaugeState(state)) {
      family(key.name, "gauge", key.description).lines.push(
        `${key.name}${labels(tags)} ${number(state.value)}`,
      )
    } else if (MetricState.isHistogramState(state)) {
      const f = family(key.name, "histogram", key.description)
      for (const [bound, count] of state.buckets) {
        // Effect's boundaries end with +Inf; that bucket is written once below, from the count.
        if (bound === Number.POSITIVE_INFINITY) continue
        f.lines.push(`${key.name}_bucket${labels([...tags, ["le", number(bound)]])} ${count}`)
      }
      f.lines.push(`${key.name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
      f.lines.push(`${key.name}_sum${labels(tags)} ${number(state.sum)}`)
      f.lines.push(`${key.name}_count${labels(tags)} ${state.count}`)
    }
  }
  const out: Array<string> = []
  // Code-unit order: metric names are ASCII, and `localeCompare` would page ICU's collation data
  // (about 3 MiB of the node binary) into the process at the first scrape, for good.
  for (const [name, f] of [...families].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.lines)
  }
  return `${out.join("\n")}\n`
}

/** What `renderProcess` reads: `process.memoryUsage()` and `process.cpuUsage()`. */
export interface ProcessUsage {
  readonly memory: Pick<NodeJS.MemoryUsage, "rss" | "heapUsed" | "heapTotal" | "external">
  /** Microseconds, as `process.cpuUsage()` returns them. */
  readonly cpu: { readonly user: number; readonly system: number }
}

/**
 * The process's own memory and CPU under the names Prometheus client libraries use (prom-client's
 * default metrics), so that the usual dashboards and the benchmark read them without a sidecar.
 */
export const renderProcess = (usage: ProcessUsage): string => {
  const family = (name: string, type: string, help: string, value: number) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${number(value)}\n`
  return [
    family(
      "process_cpu_seconds_total",
      "counter",
      "Total user and system CPU time spent in seconds",
      (usage.cpu.user + usage.cpu.system) / 1e6,
    ),
    family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes", usage.memory.rss),
    family("nodejs_heap_size_total_bytes", "gauge", "V8 heap size in bytes", usage.memory.heapTotal),
    family("nodejs_heap_size_used_bytes", "gauge", "V8 heap used in bytes", usage.memory.heapUsed),
    family(
      "nodejs_external_memory_bytes",
      "gauge",
      "Memory of C++ objects bound to JavaScript objects, in bytes",
      usage.memory.external,
    ),
  ].join("")
}
