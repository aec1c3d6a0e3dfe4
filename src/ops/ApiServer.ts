/**
 * The operational API on `API_BIND_ADDRESS` (`:8082` like the Go controller): `POST
 * /api/v1/resync`, `/metrics` in Prometheus text format, and `/healthz`.
 *
 * The resync answer keeps the Go controller's fields (`status`, `resources`, `message`) and adds
 * what was queued, so existing scripts keep working. Unlike the Go controller's, the endpoint is
 * authenticated (ResyncAuth: 401 without valid credentials, 403 when they are not allowed) and
 * rate-limited (ResyncGate: 429 with `Retry-After`); `/metrics` and `/healthz` stay open.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Duration, Effect, Layer, Metric, Option } from "effect"
import { SyncConfig } from "../config/Config.js"
import { serve } from "../http/Listen.js"
import type { KubeClient } from "../kube/KubeClient.js"
import { withoutRemovedTypes } from "../metrics/Metrics.js"
import * as PrometheusText from "../metrics/PrometheusText.js"
import { Watchers } from "../watch/Watchers.js"
import * as KubeReview from "./KubeReview.js"
import { Resync } from "./Resync.js"
import { fromTokenFile, open, ResyncAuth } from "./ResyncAuth.js"

/** A refused resync: the Go controller's answer shape with `status: "error"`. */
const refused = (status: number, message: string, headers: Record<string, string> = {}) =>
  Effect.as(
    Effect.logInfo("resync request refused").pipe(Effect.annotateLogs({ status, reason: message })),
    HttpServerResponse.unsafeJson({ status: "error", message }, { status, headers }),
  )

const challenge = { "www-authenticate": 'Bearer realm="k8s-vectordb-sync"' }

export const requestResync = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const auth = yield* ResyncAuth
  const resync = yield* Resync
  // Credentials first: a caller who may not resync learns nothing about the rate limit.
  yield* auth.check(request.headers.authorization)
  const outcome = yield* resync.request
  return yield* HttpServerResponse.json({
    status: "ok",
    resources: outcome.upserts,
    message: `resynced ${outcome.types} types: queued ${outcome.upserts} upserts and ${outcome.deletes} deletes`,
    ...outcome,
  })
}).pipe(
  Effect.catchTags({
    Unauthenticated: (e) => refused(401, e.reason, challenge),
    Forbidden: (e) => refused(403, e.reason),
    AuthUnavailable: (e) => refused(503, e.reason),
    ResyncRateLimited: (e) =>
      refused(429, e.message, {
        "retry-after": String(Math.max(1, Math.ceil(Duration.toSeconds(e.retryAfter)))),
      }),
  }),
)

/** The types watched now, when the watches run in this process (not in a bare API router). */
const watchedTypeKeys = Effect.flatMap(Effect.serviceOption(Watchers), (watchers) =>
  Option.match(watchers, {
    onNone: () => Effect.succeedNone,
    onSome: (w) => Effect.map(w.status, (all) => Option.some(new Set(all.map((s) => s.key)))),
  }),
)

export const router = HttpRouter.empty.pipe(
  HttpRouter.post("/api/v1/resync", requestResync),
  HttpRouter.get(
    "/metrics",
    Effect.map(Effect.all([Metric.snapshot, watchedTypeKeys]), ([snapshot, watched]) =>
      HttpServerResponse.text(
        PrometheusText.render(
          Option.match(watched, {
            onNone: () => snapshot,
            onSome: (keys) => withoutRemovedTypes(snapshot, keys),
          }),
        ) + PrometheusText.renderProcess({ memory: process.memoryUsage(), cpu: process.cpuUsage() }),
        { contentType: PrometheusText.contentType },
      ),
    ),
  ),
  HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
)

/** The resync authentication `RESYNC_AUTH` chooses. */
export const resyncAuthLayer: Layer.Layer<ResyncAuth, never, SyncConfig | KubeClient> = Layer.effect(
  ResyncAuth,
  Effect.flatMap(SyncConfig, ({ resyncAuth }) => {
    switch (resyncAuth.mode) {
      case "kubernetes":
        return KubeReview.make()
      case "token":
        return Effect.succeed(fromTokenFile(resyncAuth.tokenFile))
      case "none":
        return Effect.as(
          Effect.logWarning("RESYNC_AUTH=none: POST /api/v1/resync is open to anyone who reaches its port"),
          open,
        )
    }
  }),
)

export const layer: Layer.Layer<never, never, SyncConfig | Resync | KubeClient> = Layer.unwrapEffect(
  Effect.map(SyncConfig, (config) => serve(router, config.apiBindAddress)),
).pipe(Layer.provide(resyncAuthLayer))
