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
export * as ApiServer from "./ApiServer.js"
export * as Batcher from "./Batcher.js"
export * as Change from "./Change.js"
export * as Coalescer from "./Coalescer.js"
export * from "./Config.js"
export * as Controller from "./Controller.js"
export * as DryRunSink from "./DryRunSink.js"
export * as HealthServer from "./HealthServer.js"
export * as HttpSink from "./HttpSink.js"
export * as Instance from "./Instance.js"
export * as Kube from "./kube/index.js"
export { KubeClient } from "./kube/KubeClient.js"
export { KubeConfigSource } from "./kube/KubeConfigSource.js"
export * as LeaderElection from "./LeaderElection.js"
export * as Metrics from "./Metrics.js"
export * from "./Payload.js"
export * as Pipeline from "./Pipeline.js"
export { SyncPipeline } from "./Pipeline.js"
export * as PrometheusText from "./PrometheusText.js"
export { Resync, type ResyncOutcome } from "./Resync.js"
export * from "./Sink.js"
export * as Sinks from "./Sinks.js"
export * as Discovery from "./watch/Discovery.js"
export * as TypeWatch from "./watch/TypeWatch.js"
export { Watchers } from "./watch/Watchers.js"
