/**
 * The library face: an Effect program brings its own sink Layer, runs the controller's Layers
 * against the real control plane, and receives the changes of a test namespace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Queue, Schedule } from "effect"
import {
  Controller,
  InstanceSink,
  KubeClient,
  SyncConfig,
  type SyncPayload,
  Watchers,
} from "../../src/index.js"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"

describe("embedding", () => {
  it.live(
    "an Effect program runs the controller with its own sink",
    () =>
      Effect.gen(function* () {
        const received = yield* Queue.unbounded<SyncPayload>()
        // The embedding program's sink: here it only hands payloads to the program.
        const mySink = Layer.succeed(
          InstanceSink,
          InstanceSink.make((payload) => Queue.offer(received, payload)),
        )
        const controller = Controller.coreLayer.pipe(
          Layer.provide(mySink),
          Layer.provide(KubeClient.layerFromFile(kubeContext().adminKubeconfig)),
          Layer.provide(
            SyncConfig.layerFrom({
              watchResourceTypes: ["configmaps"],
              debounceWindow: Duration.millis(100),
              batchFlushInterval: Duration.millis(50),
            }),
          ),
        )
        yield* Effect.gen(function* () {
          const watchers = yield* Watchers
          yield* Effect.repeat(watchers.ready, {
            until: (ready) => ready,
            schedule: Schedule.spaced("100 millis"),
          })
          const ns = yield* Effect.promise(() => createNamespace("embedding"))
          yield* Effect.promise(async () =>
            expectStatus(
              await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, {
                metadata: { name: "settings", labels: { owner: "embedder" } },
              }),
              201,
            ),
          )
          const id = `${ns}/v1/ConfigMap/settings`
          const payload = yield* Queue.take(received).pipe(
            Effect.repeat({ until: (p) => p.upserts.some((u) => u.id === id) }),
            Effect.timeout("30 seconds"),
          )
          expect(payload.upserts.find((u) => u.id === id)?.labels).toEqual({ owner: "embedder" })
          yield* Effect.promise(() => deleteNamespace(ns))
        }).pipe(Effect.provide(controller))
      }),
    60_000,
  )
})
