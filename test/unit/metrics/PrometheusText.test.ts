/**
 * `/metrics` rendering against the Prometheus text format: counters, gauges and histograms made
 * and updated through Effect's own `Metric` API (what the controller does), rendered, and read back
 * by a strict reader of the format (test/support/prometheus.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, type MetricPair } from "effect"
import * as PrometheusText from "../../../src/metrics/PrometheusText.js"
import { parsePrometheusExposition, parsePrometheusText, sampleValue } from "../../support/prometheus.js"

/** The snapshot of the metrics whose names start with `prefix` (the registry is process-wide). */
const snapshotOf = (prefix: string): Effect.Effect<ReadonlyArray<MetricPair.MetricPair.Untyped>> =>
  Effect.map(Metric.snapshot, (pairs) => pairs.filter((p) => p.metricKey.name.startsWith(prefix)))

describe("PrometheusText.render", () => {
  it.effect("counters and gauges: HELP and TYPE once per family, one line per label set", () =>
    Effect.gen(function* () {
      const requests = Metric.counter("pt_one_requests_total", { description: "Requests", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(requests, "outcome", "success"), 3)
      yield* Metric.increment(Metric.tagged(requests, "outcome", "rejected"))
      yield* Metric.set(Metric.gauge("pt_one_pending"), -2.5)
      const text = PrometheusText.render(yield* snapshotOf("pt_one_"))
      expect(text.split("\n").filter((l) => !l.startsWith("pt_one_requests_total{"))).toEqual([
        "# HELP pt_one_pending pt_one_pending",
        "# TYPE pt_one_pending gauge",
        "pt_one_pending -2.5",
        "# HELP pt_one_requests_total Requests",
        "# TYPE pt_one_requests_total counter",
        "",
      ])
      const { samples, families } = parsePrometheusExposition(text)
      expect(families.get("pt_one_requests_total")?.type).toBe("counter")
      expect(families.get("pt_one_pending")?.type).toBe("gauge")
      expect(sampleValue(samples, "pt_one_requests_total", { outcome: "success" })).toBe(3)
      expect(sampleValue(samples, "pt_one_requests_total", { outcome: "rejected" })).toBe(1)
      expect(sampleValue(samples, "pt_one_pending")).toBe(-2.5)
    }),
  )

  it.effect("histograms: cumulative buckets by le, one +Inf bucket equal to _count, _sum", () =>
    Effect.gen(function* () {
      const duration = Metric.histogram(
        "pt_two_seconds",
        MetricBoundaries.fromIterable([0.1, 1, 10]),
        "Duration",
      ).pipe(Metric.tagged("sink", "http"))
      for (const value of [0.05, 0.1, 0.5, 5, 50]) yield* Metric.update(duration, value)
      const text = PrometheusText.render(yield* snapshotOf("pt_two_"))
      expect(text).toBe(
        [
          "# HELP pt_two_seconds Duration",
          "# TYPE pt_two_seconds histogram",
          'pt_two_seconds_bucket{sink="http",le="0.1"} 2',
          'pt_two_seconds_bucket{sink="http",le="1"} 3',
          'pt_two_seconds_bucket{sink="http",le="10"} 4',
          'pt_two_seconds_bucket{sink="http",le="+Inf"} 5',
          'pt_two_seconds_sum{sink="http"} 55.65',
          'pt_two_seconds_count{sink="http"} 5',
          "",
        ].join("\n"),
      )
      expect(parsePrometheusText(text)).toHaveLength(6)
    }),
  )

  it.effect("the controller's send-duration histogram (exponential boundaries) reads back", () =>
    Effect.gen(function* () {
      const duration = Metric.histogram(
        "pt_three_seconds",
        MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 }),
      )
      yield* Metric.update(duration, 0.02)
      yield* Metric.update(duration, 1_000)
      const samples = parsePrometheusText(PrometheusText.render(yield* snapshotOf("pt_three_")))
      expect(sampleValue(samples, "pt_three_seconds_bucket", { le: "0.02" })).toBe(1)
      expect(sampleValue(samples, "pt_three_seconds_bucket", { le: "+Inf" })).toBe(2)
      expect(sampleValue(samples, "pt_three_seconds_count")).toBe(2)
      expect(sampleValue(samples, "pt_three_seconds_sum")).toBe(1_000.02)
    }),
  )

  it.effect(
    "label values escape backslash, double quote and newline; HELP escapes backslash and newline",
    () =>
      Effect.gen(function* () {
        const raw = 'C:\\dir "quoted"\nnext, line=1}'
        const counter = Metric.counter("pt_four_total", {
          description: "Help with \\ and\nnewline",
          incremental: true,
        })
        yield* Metric.increment(Metric.tagged(counter, "path", raw))
        const text = PrometheusText.render(yield* snapshotOf("pt_four_"))
        expect(text).toBe(
          [
            "# HELP pt_four_total Help with \\\\ and\\nnewline",
            "# TYPE pt_four_total counter",
            'pt_four_total{path="C:\\\\dir \\"quoted\\"\\nnext, line=1}"} 1',
            "",
          ].join("\n"),
        )
        const { samples, families } = parsePrometheusExposition(text)
        expect(samples).toEqual([{ name: "pt_four_total", labels: { path: raw }, value: 1 }])
        expect(families.get("pt_four_total")?.help).toBe("Help with \\ and\nnewline")
      }),
  )

  it("an empty snapshot is an empty exposition", () => {
    expect(PrometheusText.render([])).toBe("\n")
    expect(parsePrometheusText(PrometheusText.render([]))).toEqual([])
  })
})

describe("the format reader is strict", () => {
  it.each([
    ["a sample without TYPE", "x 1\n"],
    ["a raw newline escape outside the rules", '# TYPE x counter\nx{a="\\t"} 1\n'],
    ["a duplicated series", "# TYPE x counter\nx 1\nx 2\n"],
    [
      "two +Inf buckets",
      '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ],
    [
      "non-cumulative buckets",
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ],
    ["_count unlike +Inf", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
    ["a family split in two", "# TYPE x counter\n# TYPE y counter\nx 1\ny 1\n"],
    ["no final newline", "# TYPE x counter\nx 1"],
  ])("rejects %s", (_, text) => {
    expect(() => parsePrometheusText(text)).toThrow()
  })
})

describe("PrometheusText.renderProcess", () => {
  it("renders the process's memory and CPU as well-formed families under prom-client's names", () => {
    const text = PrometheusText.renderProcess({
      memory: { rss: 123_000_000, heapUsed: 45_000_000, heapTotal: 60_000_000, external: 2_000_000 },
      cpu: { user: 1_500_000, system: 250_000 },
    })
    const { samples, families } = parsePrometheusExposition(text)
    expect(sampleValue(samples, "process_resident_memory_bytes")).toBe(123_000_000)
    expect(sampleValue(samples, "nodejs_heap_size_used_bytes")).toBe(45_000_000)
    expect(sampleValue(samples, "nodejs_heap_size_total_bytes")).toBe(60_000_000)
    expect(sampleValue(samples, "nodejs_external_memory_bytes")).toBe(2_000_000)
    expect(sampleValue(samples, "process_cpu_seconds_total")).toBe(1.75)
    expect(families.get("process_cpu_seconds_total")?.type).toBe("counter")
    expect(families.get("process_resident_memory_bytes")?.type).toBe("gauge")
  })

  it("appends to a metrics snapshot without breaking the exposition", () => {
    const snapshot = Effect.runSync(
      Effect.gen(function* () {
        yield* Metric.increment(Metric.counter("pt_five_total", { incremental: true }))
        return yield* snapshotOf("pt_five_")
      }),
    )
    const text =
      PrometheusText.render(snapshot) +
      PrometheusText.renderProcess({ memory: process.memoryUsage(), cpu: process.cpuUsage() })
    const samples = parsePrometheusText(text)
    expect(sampleValue(samples, "pt_five_total")).toBe(1)
    expect(sampleValue(samples, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0)
  })
})
