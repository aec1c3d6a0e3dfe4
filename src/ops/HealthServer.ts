/**
 * `/healthz` and `/readyz` on `HEALTH_PROBE_BIND_ADDRESS` (`:8081` like the Go controller).
 *
 * Liveness says only that the process answers: restarting a controller because the API server is
 * slow would make things worse. Readiness says that the initial list of every watched type has
 * completed; `?verbose` (or `Accept: application/json`) adds the per-type detail an operator needs
 * to see which type holds it up or is forbidden.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Option } from "effect"
import { SyncConfig } from "../config/Config.js"
import { serve } from "../http/Listen.js"
import { Watchers } from "../watch/Watchers.js"

export const router = HttpRouter.empty.pipe(
  HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
  HttpRouter.get(
    "/readyz",
    Effect.gen(function* () {
      const watchers = yield* Watchers
      const request = yield* HttpServerRequest.HttpServerRequest
      const ready = yield* watchers.ready
      const status = ready ? 200 : 503
      const detailed =
        request.url.includes("verbose") || (request.headers.accept ?? "").includes("application/json")
      if (!detailed)
        return HttpServerResponse.text(ready ? "ok" : "not ready: initial lists incomplete", { status })
      const types = yield* watchers.status
      const progress = yield* watchers.progress
      return yield* HttpServerResponse.json(
        {
          ready,
          // Start-up progress at a glance; the per-type detail follows.
          listed: progress.listed,
          forbidden: progress.forbidden,
          total: progress.total,
          types: types.map((t) => ({
            type: t.key,
            apiVersion: t.apiVersion,
            kind: t.kind,
            phase: t.phase,
            synced: t.synced,
            objects: t.objects,
            restarts: t.restarts,
            lastError: Option.getOrUndefined(t.lastError),
          })),
        },
        { status },
      )
    }),
  ),
)

export const layer: Layer.Layer<never, never, SyncConfig | Watchers> = Layer.unwrapEffect(
  Effect.map(SyncConfig, (config) => serve(router, config.healthProbeBindAddress)),
)
