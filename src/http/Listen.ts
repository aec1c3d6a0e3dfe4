/** Serves an `HttpRouter` on a `[host]:port` bind address with Node's HTTP server. */
import { createServer } from "node:http"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import { NodeHttpServer } from "@effect/platform-node"
import { Layer } from "effect"
import type { BindAddress } from "../config/Config.js"

export const serve = <E, R>(
  router: HttpRouter.HttpRouter<E, R>,
  address: BindAddress,
): Layer.Layer<never, never, Exclude<R, HttpServer.HttpServer>> =>
  HttpServer.serve(router).pipe(
    HttpServer.withLogAddress,
    Layer.provide(
      NodeHttpServer.layer(() => createServer(), {
        port: address.port,
        ...(address.host === undefined ? {} : { host: address.host }),
      }),
    ),
    // A port that cannot be bound is a configuration error the process cannot live with.
    Layer.orDie,
  ) as Layer.Layer<never, never, Exclude<R, HttpServer.HttpServer>>
