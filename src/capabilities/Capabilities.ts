/**
 * The capabilities pipeline, on only when `CAPABILITIES_ENDPOINT` is set: which CRDs the cluster
 * serves, so that the receiver can describe what the cluster can do ("certificate management",
 * once cert-manager is installed). CRD additions are debounced and batched, removals go at once,
 * both with the retries and no-loss guarantees of the instance pipeline (it is the same pipeline,
 * keyed by CRD name). A CRD update sends nothing unless the kinds it serves change.
 */
import { Console, Data, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import { SyncConfig } from "../config/Config.js"
import { KubeClient } from "../kube/KubeClient.js"
import { isNotFound } from "../kube/KubeError.js"
import type { KeyedCodec } from "../pipeline/KeyedCodec.js"
import * as Pipeline from "../pipeline/Pipeline.js"
import { CapabilitiesPayload, fromBatch, jsonBytes } from "../record/Payload.js"
import * as HttpSink from "../sink/HttpSink.js"
import { httpClientLayer, httpSinkOptions, type ReceiverSetupError } from "../sink/Select.js"
import type { SinkError } from "../sink/Sink.js"
import { Crds } from "../watch/Crds.js"

export type CapabilityChange = Data.TaggedEnum<{
  /** `kinds` summarises what the CRD serves; equal summaries mean nothing to send. */
  Upsert: { readonly name: string; readonly kinds: string }
  Delete: { readonly name: string }
}>
export const CapabilityChange = Data.taggedEnum<CapabilityChange>()

export const codec: KeyedCodec<CapabilityChange> = {
  idOf: (change) => change.name,
  measure: (change) => ({
    fingerprint: change._tag === "Upsert" ? change.kinds : "",
    // Both arrays of its payload carry the CRD's name only.
    size: jsonBytes(change.name),
  }),
}

export const toPayload = (batch: ReadonlyArray<CapabilityChange>): CapabilitiesPayload =>
  fromBatch(
    batch,
    (upsert) => upsert.name,
    (remove) => remove.name,
  )

/** The part of a CRD that decides what it offers: its kind and the versions it serves. */
const CrdServed = Schema.Struct({
  spec: Schema.Struct({
    names: Schema.Struct({ kind: Schema.String }),
    versions: Schema.Array(Schema.Struct({ name: Schema.String, served: Schema.Boolean })),
  }),
})

/** Metadata-only watches carry no spec: read the served kinds of one CRD. */
const servedKinds = (name: string): Effect.Effect<Option.Option<string>, never, KubeClient> =>
  Effect.flatMap(KubeClient, (client) =>
    client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`, { schema: CrdServed }),
  ).pipe(
    Effect.map((crd) =>
      Option.some(
        `${crd.spec.names.kind}:${crd.spec.versions
          .filter((v) => v.served)
          .map((v) => v.name)
          .sort()
          .join(",")}`,
      ),
    ),
    Effect.catchIf(isNotFound, () => Effect.succeedNone), // gone again: its delete follows
    Effect.retry(Schedule.exponential("500 millis").pipe(Schedule.intersect(Schedule.recurs(5)))),
    // Unknown beats lost: the addition is sent, and a later update with known kinds is sent too.
    Effect.orElse(() =>
      Effect.as(
        Effect.logWarning("cannot read a CRD's served versions; sending its addition anyway").pipe(
          Effect.annotateLogs({ crd: name }),
        ),
        Option.some("?"),
      ),
    ),
  )

/** Runs the pipeline for as long as the layer lives; nothing at all without an endpoint. */
export const layer: Layer.Layer<never, ReceiverSetupError, SyncConfig | KubeClient | Crds> =
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const config = yield* SyncConfig
      if (Option.isNone(config.capabilitiesEndpoint)) return Layer.empty
      const endpoint = config.capabilitiesEndpoint.value
      const run = Effect.gen(function* () {
        const send: (payload: CapabilitiesPayload) => Effect.Effect<void, SinkError> = config.dryRun
          ? (payload) => Console.log(JSON.stringify({ capabilities: payload }))
          : yield* HttpSink.makePoster(yield* httpSinkOptions(config, endpoint), CapabilitiesPayload)
        const client = yield* KubeClient
        const crds = yield* Crds
        const changes = crds.events.pipe(
          Stream.mapEffect(
            (crd): Effect.Effect<Option.Option<CapabilityChange>, never, KubeClient> =>
              crd._tag === "Deleted"
                ? Effect.succeedSome(CapabilityChange.Delete({ name: crd.name }))
                : Effect.map(
                    servedKinds(crd.name),
                    Option.map((kinds) => CapabilityChange.Upsert({ name: crd.name, kinds })),
                  ),
          ),
          Stream.filterMap((change) => change),
          Stream.provideService(KubeClient, client),
        )
        yield* Pipeline.makeWith(
          Pipeline.SyncPipeline.optionsFrom(config),
          { name: "capabilities", codec, send: (batch) => send(toPayload(batch)) },
          { changes },
        )
      })
      return Layer.scopedDiscard(run).pipe(Layer.provide(httpClientLayer(config.endpointCaFile)))
    }),
  )
