/**
 * test/support/controller.ts with what fault tests need on top: the sender's timeout as a parameter
 * (hangs and slow receivers) and every log line captured, so that tests can assert that a fault was
 * logged clearly and nothing died.
 */
import { Duration, Layer, Logger, LogLevel } from "effect"
import type { SyncConfigShape } from "../../../src/Config.js"
import { type RunningController, startController } from "../controller.js"

export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

export interface FaultController extends RunningController {
  readonly logs: ReadonlyArray<LogLine>
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
  const controller = await startController({
    kubeconfig: options.kubeconfig,
    receiver: { url: options.url },
    sendTimeout: Duration.millis(options.sendTimeoutMs ?? 5_000),
    logging: Layer.mergeAll(
      Logger.replace(Logger.defaultLogger, capture),
      Logger.minimumLogLevel(LogLevel.Debug),
    ),
    ...(options.config === undefined ? {} : { config: options.config }),
  })
  return { ...controller, logs }
}
