/**
 * k8s-vectordb-sync as a library: the payload contract (Schemas a receiver can validate with),
 * and the controller's services as Effect Layers, so another Effect program can run the
 * controller inside itself, for example with its own `InstanceSink`.
 *
 * ```ts
 * const mySink = Layer.succeed(InstanceSink, InstanceSink.make((payload) => writeToMyStore(payload)))
 * const controller = Controller.coreLayer.pipe(
 *   Layer.provide(mySink),
 *   Layer.provide(KubeClient.layerFromDefault()),
 *   Layer.provide(SyncConfig.layer),
 * )
 * ```
 */

export * as Controller from "./Controller.js"
export * as Checkpoint from "./checkpoint/Checkpoint.js"
export * as CheckpointCodec from "./checkpoint/Codec.js"
export * from "./config/Config.js"
export * as Kube from "./kube/index.js"
export { KubeClient } from "./kube/KubeClient.js"
export { KubeConfigSource } from "./kube/KubeConfigSource.js"
export * as Elector from "./leader/Elector.js"
export * as Leadership from "./leader/Leadership.js"
export * as LeaseStore from "./leader/LeaseStore.js"
export * as ElectionOptions from "./leader/Options.js"
export * as LeaderRules from "./leader/Rules.js"
export * as Standby from "./leader/Standby.js"
export * as Metrics from "./metrics/Metrics.js"
export * as PrometheusText from "./metrics/PrometheusText.js"
export * as ApiServer from "./ops/ApiServer.js"
export * as HealthServer from "./ops/HealthServer.js"
export * as MemoryReducerTick from "./ops/MemoryReducerTick.js"
export { Resync, type ResyncOutcome } from "./ops/Resync.js"
export * as Coalescer from "./pipeline/Coalescer.js"
export * as DebounceBatch from "./pipeline/DebounceBatch.js"
export * as Delivery from "./pipeline/Delivery.js"
export * as Pipeline from "./pipeline/Pipeline.js"
export { SyncPipeline } from "./pipeline/Pipeline.js"
export * as Change from "./record/Change.js"
export * as Instance from "./record/Instance.js"
export * as KeyFilter from "./record/KeyFilter.js"
export * from "./record/Payload.js"
export * as DryRunSink from "./sink/DryRunSink.js"
export * as HttpSink from "./sink/HttpSink.js"
export * as Sinks from "./sink/Select.js"
export * from "./sink/Sink.js"
export { Crds } from "./watch/Crds.js"
export * as Discovery from "./watch/Discovery.js"
export * as Store from "./watch/Store.js"
export * as TypeFilter from "./watch/TypeFilter.js"
export * as TypeWatch from "./watch/TypeWatch.js"
export * as Watcher from "./watch/Watcher.js"
export { Watchers } from "./watch/Watchers.js"
export * as WatchStream from "./watch/WatchStream.js"
