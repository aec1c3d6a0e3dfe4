/**
 * Runs the controller's Layers in the test process against the real control plane, with the real
 * HTTP sender posting to a real `Receiver`: exactly what an embedding program does.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import * as Controller from "../../src/Controller.js"
import { SyncConfig, type SyncConfigShape } from "../../src/config/Config.js"
import { KubeClient } from "../../src/kube/KubeClient.js"
import { Resync, type ResyncOutcome } from "../../src/ops/Resync.js"
import { SyncPipeline } from "../../src/pipeline/Pipeline.js"
import * as HttpSink from "../../src/sink/HttpSink.js"
import { Watchers } from "../../src/watch/Watchers.js"
import type { Receiver } from "./Receiver.js"

/** Short windows so that tests wait seconds, not minutes; tests override what they examine. */
export const fastConfig: Partial<SyncConfigShape> = {
  debounceWindow: Duration.millis(200),
  debounceMaxWait: Duration.seconds(2),
  batchFlushInterval: Duration.millis(100),
  retryInitialBackoff: Duration.millis(100),
  retryMaxBackoff: Duration.seconds(1),
  shutdownTimeout: Duration.seconds(10),
}

export interface RunningController {
  readonly runtime: ManagedRuntime.ManagedRuntime<Controller.Services | KubeClient, never>
  readonly ready: () => Promise<boolean>
  readonly pending: () => Promise<number>
  readonly rediscover: () => Promise<void>
  readonly resync: () => Promise<ResyncOutcome>
  readonly stop: () => Promise<void>
}

export const startController = async (options: {
  readonly kubeconfig: string
  readonly receiver: Pick<Receiver, "url">
  readonly config?: Partial<SyncConfigShape>
  /** Also serve the health and API endpoints (`Controller.layer`); default: the core only. */
  readonly endpoints?: boolean
  /** The sender's per-request timeout; default 5 s. */
  readonly sendTimeout?: Duration.DurationInput
  /** Replaces the default logging, e.g. to capture or silence log lines. */
  readonly logging?: Layer.Layer<never>
}): Promise<RunningController> => {
  const layer = (options.endpoints ? Controller.layer : Controller.coreLayer).pipe(
    Layer.provide(
      HttpSink.layer({ url: options.receiver.url, timeout: options.sendTimeout ?? "5 seconds" }).pipe(
        Layer.provide(NodeHttpClient.layerUndici),
      ),
    ),
    Layer.provideMerge(KubeClient.layerFromFile(options.kubeconfig)),
    Layer.provide(SyncConfig.layerFrom({ ...fastConfig, ...options.config })),
    Layer.orDie,
    Layer.provide(options.logging ?? Layer.empty),
  )
  const runtime = ManagedRuntime.make(layer)
  await runtime.runPromise(Effect.void)
  return {
    runtime,
    ready: () => runtime.runPromise(Effect.flatMap(Watchers, (w) => w.ready)),
    pending: () => runtime.runPromise(Effect.flatMap(SyncPipeline, (p) => p.pending)),
    rediscover: () => runtime.runPromise(Effect.flatMap(Watchers, (w) => w.rediscover)),
    resync: () => runtime.runPromise(Effect.flatMap(Resync, (r) => r.run)),
    stop: () => runtime.dispose(),
  }
}

/** Polls until `probe` holds or the deadline passes; then fails with `describe()`. */
export const eventually = async (
  probe: () => boolean | Promise<boolean>,
  describe: () => string,
  timeoutMs = 30_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await probe()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`not within ${timeoutMs} ms: ${describe()}`)
}

/** `POST /api/v1/resync` to a controller's API port, with an `Authorization` header when given. */
export const postResync = (apiPort: number, authorization?: string): Promise<Response> =>
  fetch(`http://127.0.0.1:${apiPort}/api/v1/resync`, {
    method: "POST",
    headers: authorization === undefined ? {} : { authorization },
  })
