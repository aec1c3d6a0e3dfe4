import { describe, expect, it } from "vitest"
import * as PrometheusText from "../../src/PrometheusText.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"

describe("PrometheusText.renderProcess", () => {
  it("renders the process's memory and CPU as well-formed families under prom-client's names", () => {
    const text = PrometheusText.renderProcess({
      memory: { rss: 123_000_000, heapUsed: 45_000_000, heapTotal: 60_000_000, external: 2_000_000 },
      cpu: { user: 1_500_000, system: 250_000 },
    })
    const samples = parsePrometheusText(text)
    expect(sampleValue(samples, "process_resident_memory_bytes")).toBe(123_000_000)
    expect(sampleValue(samples, "nodejs_heap_size_used_bytes")).toBe(45_000_000)
    expect(sampleValue(samples, "nodejs_heap_size_total_bytes")).toBe(60_000_000)
    expect(sampleValue(samples, "nodejs_external_memory_bytes")).toBe(2_000_000)
    expect(sampleValue(samples, "process_cpu_seconds_total")).toBe(1.75)
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\n")
  })

  it("appends to the metrics snapshot without breaking the exposition", () => {
    const text =
      PrometheusText.render([]) +
      PrometheusText.renderProcess({ memory: process.memoryUsage(), cpu: process.cpuUsage() })
    expect(sampleValue(parsePrometheusText(text), "nodejs_heap_size_used_bytes")).toBeGreaterThan(0)
  })
})
