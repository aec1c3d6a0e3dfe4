/**
 * Leader election for the process (`main.ts`): with `LEADER_ELECTION=true`, building {@link layer}
 * blocks until this process leads, keeps the lease renewed while the controller runs (also during
 * the final flush on SIGTERM), and releases it when closed. Provide it to the controller's Layer so
 * that the controller starts only once leading and has shut down (final flush included) before the
 * lease is released. With `LEADER_ELECTION=false` it provides `Leadership.always`.
 *
 * While a standby waits, it answers the health probes itself: `/healthz` 200 (the process is alive)
 * and `/readyz` 200 with the body `standby: …`. A standby is ready in the sense that matters to
 * Kubernetes: it is doing what it should, and a standby that reported 503 would stall every rolling
 * update of a Deployment (the new pod can never become ready while the old one holds the lease).
 * Once leading, the controller's own health server takes the port over and `/readyz` means
 * "initial lists complete" again.
 *
 * When leadership is lost, `onLost` runs at once and the controller is not interrupted: an
 * interruption would run the pipeline's finalizer, which flushes pending changes, i.e. sends as a
 * non-leader. `main.ts` exits the process there.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { SyncConfig } from "../config/Config.js"
import * as Listen from "../http/Listen.js"
import { WriteFence } from "../http/WriteFence.js"
import type { KubeClient } from "../kube/KubeClient.js"
import { Elector, type LeadershipLost } from "./Elector.js"
import { Leadership, LeadershipExpiry, writeFence } from "./Leadership.js"
import { fromConfig } from "./Options.js"

/** `/healthz` and `/readyz` of a standby, while it waits for `lease`. */
export const probes = (lease: string) =>
  HttpRouter.empty.pipe(
    HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
    HttpRouter.get(
      "/readyz",
      HttpServerResponse.text(`standby: waiting for the leader-election lease ${lease}`),
    ),
  )

export const layer = (options: {
  readonly onLost: (lost: LeadershipLost) => Effect.Effect<void>
}): Layer.Layer<Leadership | LeadershipExpiry | WriteFence, never, SyncConfig | KubeClient> =>
  Layer.unwrapEffect(
    Effect.map(SyncConfig, (config) =>
      config.leaderElection.enabled
        ? Layer.scopedContext(
            Effect.gen(function* () {
              const elector = yield* Elector.make(fromConfig(config.leaderElection))
              const standby = yield* Scope.make()
              yield* Layer.buildWithScope(
                Listen.serve(probes(elector.lease), config.healthProbeBindAddress),
                standby,
              )
              // The port is free again before the controller's health server binds it.
              const term = yield* elector.awaitLeadership.pipe(
                Effect.ensuring(Scope.close(standby, Exit.void)),
              )
              yield* term.lost.pipe(Effect.flatMap(options.onLost), Effect.forkScoped)
              return Context.make(Leadership, elector.leadership).pipe(
                Context.add(LeadershipExpiry, elector.expiry),
                Context.merge(writeFence(elector.leadership, elector.expiry)),
              )
            }),
          )
        : Layer.mergeAll(
            Leadership.always,
            Layer.succeed(LeadershipExpiry, Effect.succeed(Infinity)),
            Layer.succeed(WriteFence, () => true),
          ),
    ),
  )
