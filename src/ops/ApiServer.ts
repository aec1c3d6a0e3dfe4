/**
 * The operational API on `API_BIND_ADDRESS` (`:8082` like the Go controller): `POST
 * /api/v1/resync`, `/metrics` in Prometheus text format, and `/healthz`.
 *
 * The resync answer keeps the Go controller's fields (`status`, `resources`, `message`) and adds
 * what was queued, so existing scripts keep working.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Metric } from "effect"
import { SyncConfig } from "../config/Config.js"
import { serve } from "../http/Listen.js"
import * as PrometheusText from "../metrics/PrometheusText.js"
import { Resync } from "./Resync.js"

export const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/api/v1/resync",
    Effect.gen(function* () {
      const resync = yield* Resync
      const outcome = yield* resync.run
      return yield* HttpServerResponse.json({
        status: "ok",
        resources: outcome.upserts,
        message: `resynced ${outcome.types} types: queued ${outcome.upserts} upserts and ${outcome.deletes} deletes`,
        ...outcome,
      })
    }),
  ),
  HttpRouter.get(
    "/metrics",
    Effect.map(Metric.snapshot, (snapshot) =>
      HttpServerResponse.text(
        PrometheusText.render(snapshot) +
          PrometheusText.renderProcess({ memory: process.memoryUsage(), cpu: process.cpuUsage() }),
        { contentType: PrometheusText.contentType },
      ),
    ),
  ),
  HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
)

export const layer: Layer.Layer<never, never, SyncConfig | Resync> = Layer.unwrapEffect(
  Effect.map(SyncConfig, (config) => serve(router, config.apiBindAddress)),
)
