/**
 * The controller's Layers in the test process, like test/support/controller.ts, with what fault
 * tests need on top: the sender's timeout as a parameter (hangs and slow receivers) and every log
 * line captured, so that tests can assert that a fault was logged clearly and nothing died.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Duration, Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { SyncConfig, type SyncConfigShape } from "../../../src/Config.js"
import * as Controller from "../../../src/Controller.js"
import * as HttpSink from "../../../src/HttpSink.js"
import { KubeClient } from "../../../src/kube/KubeClient.js"
import { SyncPipeline } from "../../../src/Pipeline.js"
import { Resync, type ResyncOutcome } from "../../../src/Resync.js"
import { Watchers } from "../../../src/watch/Watchers.js"
import { fastConfig } from "../controller.js"

export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

export interface FaultController {
  readonly logs: ReadonlyArray<LogLine>
  readonly ready: () => Promise<boolean>
  readonly pending: () => Promise<number>
  readonly resync: () => Promise<ResyncOutcome>
  readonly stop: () => Promise<void>
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
  const logging = Layer.mergeAll(
    Logger.replace(Logger.defaultLogger, capture),
    Logger.minimumLogLevel(LogLevel.Debug),
  )
  const layer = Controller.coreLayer.pipe(
    Layer.provide(
      HttpSink.layer({ url: options.url, timeout: Duration.millis(options.sendTimeoutMs ?? 5_000) }).pipe(
        Layer.provide(NodeHttpClient.layerUndici),
      ),
    ),
    Layer.provide(KubeClient.layerFromFile(options.kubeconfig)),
    Layer.provide(SyncConfig.layerFrom({ ...fastConfig, ...options.config })),
    Layer.provide(logging),
    Layer.orDie,
  )
  const runtime = ManagedRuntime.make(layer)
  await runtime.runPromise(Effect.void)
  return {
    logs,
    ready: () => runtime.runPromise(Effect.flatMap(Watchers, (w) => w.ready)),
    pending: () => runtime.runPromise(Effect.flatMap(SyncPipeline, (p) => p.pending)),
    resync: () => runtime.runPromise(Effect.flatMap(Resync, (r) => r.run)),
    stop: () => runtime.dispose(),
  }
}
