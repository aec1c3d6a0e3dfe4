/**
 * test/support/controller.ts with what fault tests need on top: the sender's timeout as a parameter
 * (hangs and slow receivers), the controller's real endpoints on free ports so that tests observe
 * what happened through `/metrics` (what an operator sees) rather than through log text, and every
 * log line captured, so that tests can assert that a fault was logged clearly and nothing died.
 */
import { Duration, Layer, Logger, LogLevel } from "effect"
import type { SyncConfigShape } from "../../../src/config/Config.js"
import { type RunningController, startController } from "../controller.js"
import { freePort } from "../ports.js"
import { parsePrometheusText, type Sample, sampleValue } from "../prometheus.js"

export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

export interface FaultController extends RunningController {
  readonly logs: ReadonlyArray<LogLine>
  /** GET /metrics, read by the Prometheus text reader (duplicate series allowed, see there). */
  readonly metrics: () => Promise<ReadonlyArray<Sample>>
  /** One value of /metrics (summed over the series matching `labels`). */
  readonly metric: (name: string, labels?: Readonly<Record<string, string>>) => Promise<number>
}

const text = (message: unknown): string =>
  Array.isArray(message) ? message.map(String).join(" ") : String(message)

export const startFaultController = async (options: {
  readonly kubeconfig: string
  readonly url: string
  readonly sendTimeoutMs?: number
  readonly config?: Partial<SyncConfigShape>
}): Promise<FaultController> => {
  const logs: Array<LogLine> = []
  const capture = Logger.make(({ annotations, logLevel, message }) => {
    const fields: Record<string, unknown> = {}
    for (const [key, value] of annotations) fields[key] = value
    logs.push({ level: logLevel.label, message: text(message), annotations: fields })
  })
  const apiPort = await freePort()
  const controller = await startController({
    kubeconfig: options.kubeconfig,
    receiver: { url: options.url },
    endpoints: true,
    sendTimeout: Duration.millis(options.sendTimeoutMs ?? 5_000),
    logging: Layer.mergeAll(
      Logger.replace(Logger.defaultLogger, capture),
      Logger.minimumLogLevel(LogLevel.Debug),
    ),
    config: {
      apiBindAddress: { host: "127.0.0.1", port: apiPort },
      healthProbeBindAddress: { host: "127.0.0.1", port: await freePort() },
      ...options.config,
    },
  })
  const metrics = async () => {
    const response = await fetch(`http://127.0.0.1:${apiPort}/metrics`)
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`)
    // In-process: a histogram may show once per test file's copy of `effect` (see the option).
    return parsePrometheusText(await response.text(), { allowDuplicateSeries: true })
  }
  return {
    ...controller,
    logs,
    metrics,
    metric: async (name, labels = {}) => sampleValue(await metrics(), name, labels),
  }
}
