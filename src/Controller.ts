/**
 * The controller assembled from its Layers: configuration, Kubernetes access, the sink, the
 * pipeline, the watches and the health endpoints. `layer` needs only an `InstanceSink` besides the
 * configuration and the Kubernetes client, so an embedding program can bring its own sink.
 *
 * Release order is the shutdown order: the health server and the watches stop first, then the
 * pipeline's finalizer flushes everything still pending.
 */
import { Effect, Layer, Option } from "effect"
import * as Capabilities from "./capabilities/Capabilities.js"
import { Checkpoint } from "./checkpoint/Checkpoint.js"
import { isDryRun, SyncConfig } from "./config/Config.js"
import type { KubeClient } from "./kube/KubeClient.js"
import * as ApiServer from "./ops/ApiServer.js"
import * as HealthServer from "./ops/HealthServer.js"
import * as MemoryReducerTick from "./ops/MemoryReducerTick.js"
import { Resync } from "./ops/Resync.js"
import { SyncPipeline } from "./pipeline/Pipeline.js"
import { ChangeQueue } from "./record/ChangeQueue.js"
import { recordKeys } from "./record/KeyFilter.js"
import type { ReceiverSetupError } from "./sink/Select.js"
import * as Sinks from "./sink/Select.js"
import type { InstanceSink } from "./sink/Sink.js"
import { Crds } from "./watch/Crds.js"
import * as Discovery from "./watch/Discovery.js"
import * as ObjectFilter from "./watch/ObjectFilter.js"
import * as TypeFilter from "./watch/TypeFilter.js"
import { Watchers } from "./watch/Watchers.js"

/** The watches, feeding the pipeline, for the types that discovery and the filters select. */
export const watchersLayer: Layer.Layer<Watchers, never, SyncConfig | ChangeQueue | KubeClient | Crds> =
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const config = yield* SyncConfig
      const discover = yield* Discovery.makeRevalidating()
      return Watchers.layer({
        discover: Effect.map(discover, (found) => ({
          types: TypeFilter.selectTypes(found.types, config),
          failures: found.failures,
        })),
        discoveryInterval: config.discoveryInterval,
        listConcurrency: config.listConcurrency,
        typeWatch: {
          watchList: config.watchList,
          ...Option.match(config.labelSelector, {
            onNone: () => ({}),
            onSome: (labelSelector) => ({ labelSelector }),
          }),
        },
        objectFilter: ObjectFilter.make(config),
        recordKeys: recordKeys(config),
      })
    }),
  )

/** The one CRD watch, read by re-discovery and the capabilities pipeline. */
export const crdsLayer: Layer.Layer<Crds, never, SyncConfig | KubeClient> = Layer.unwrapEffect(
  Effect.map(SyncConfig, (config) => Crds.layer({ watchList: config.watchList })),
)

export type Services = Watchers | SyncPipeline | Resync | ChangeQueue | Crds

/** Watches, pipeline and resync, without the HTTP endpoints: for embedding. */
export const coreLayer: Layer.Layer<Services, never, SyncConfig | KubeClient | InstanceSink> =
  Resync.layer.pipe(
    Layer.provideMerge(watchersLayer),
    Layer.provideMerge(SyncPipeline.layer),
    Layer.provideMerge(crdsLayer),
    Layer.provideMerge(ChangeQueue.layer()),
  )

/**
 * Everything the controller process runs, given configuration, a Kubernetes client and a sink:
 * `coreLayer` plus `/healthz`, `/readyz` on the health port, the API (`/api/v1/resync`,
 * `/metrics`) on the API port, the CRD capabilities pipeline when `CAPABILITIES_ENDPOINT` is set,
 * and the tick without which Node 24's V8 keeps the heap an initial sync grew.
 */
export const layer: Layer.Layer<Services, ReceiverSetupError, SyncConfig | KubeClient | InstanceSink> =
  Layer.mergeAll(HealthServer.layer, ApiServer.layer, Capabilities.layer, MemoryReducerTick.layer).pipe(
    Layer.provideMerge(coreLayer),
  )

/**
 * `app` with the checkpoint of what the receiver holds (`CHECKPOINT=true`): the checkpoint is built
 * before `app` and released after it, so that its last write follows the final flush. Off in a dry
 * run: nothing is held downstream, and trying the controller out should not write to the cluster.
 */
export const withCheckpoint = <E, R>(
  app: Layer.Layer<Services, E, R>,
): Layer.Layer<Services, E, R | SyncConfig | KubeClient> =>
  Layer.unwrapEffect(
    Effect.map(
      SyncConfig,
      (config): Layer.Layer<Services, E, R | SyncConfig | KubeClient> =>
        config.checkpoint.enabled && !isDryRun(config)
          ? Checkpoint.attach.pipe(Layer.provideMerge(app), Layer.provideMerge(Checkpoint.layerFromConfig))
          : app,
    ),
  )

/** `layer` with the checkpoint (when enabled) and the sink chosen by the configuration (HTTP or dry run). */
export const layerWithConfiguredSink: Layer.Layer<Services, ReceiverSetupError, SyncConfig | KubeClient> =
  withCheckpoint(layer).pipe(Layer.provide(Sinks.layerFromConfig))
