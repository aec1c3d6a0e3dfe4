/**
 * Connections to the API server, shared the way client-go shares them. Where the server offers
 * HTTP/2 (ALPN `h2`), every request is a stream and one connection carries as many as the server
 * allows (its SETTINGS_MAX_CONCURRENT_STREAMS: 100 on kube-apiserver), so a thousand idle watches
 * cost about ten sockets and a new connection opens only when the others are full. A watch that
 * ends resets its stream; the connection stays. Where the server offers only HTTP/1.1 (or speaks
 * plain HTTP), each request in flight has a connection of its own, as on any HTTP/1.1 client, and
 * idle ones close after a few seconds.
 *
 * One transport serves one TLS identity (CA, client certificate): a rotated certificate gets a new
 * transport, and the caller retires the old one gracefully (its watches finish first).
 */

import * as http2 from "node:http2"
import { isIP } from "node:net"
import * as tls from "node:tls"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { type Dispatcher, Pool, ProxyAgent } from "undici"
import type { KubeTls } from "./KubeAuth.js"
import { StreamPool } from "./StreamPool.js"

export type Protocol = "h2" | "http/1.1"

/** What the server offered on a first, throwaway connection. */
export interface Negotiated {
  readonly protocol: Protocol
  /** Streams one connection may carry at once: the server's setting for `h2`, 1 for HTTP/1.1. */
  readonly streamsPerConnection: number
}

export interface KubeTransportOptions {
  /**
   * Upper bound on HTTP/2 connections to one server (each carries the server's stream limit). Requests
   * beyond `maxConnections × streams` wait for a free stream. Default 16.
   */
  readonly maxConnections?: number
  /** Upper bound on streams per HTTP/2 connection, whatever the server allows. Default 250. */
  readonly maxStreamsPerConnection?: number
  /** Time allowed for the TLS handshake and the server's first SETTINGS. Default 10 s. */
  readonly negotiateTimeout?: Duration.DurationInput
}

export interface KubeTransport {
  readonly negotiated: Negotiated
  readonly dispatcher: Dispatcher
  /**
   * HTTP/1.1, two connections at most, for a request again whose HTTP/2 connection was closed under
   * it (see `isGoAway`); absent when `dispatcher` speaks HTTP/1.1 already.
   */
  readonly fallback: Dispatcher | undefined
}

/**
 * undici fails every request of an HTTP/2 connection when the server sends GOAWAY, even the streams
 * the server still answers (RFC 9113 §6.8). kube-apiserver sends GOAWAY with its answer to an
 * unauthenticated request (so a 401 arrives as a reset), when it shuts down, and at random where
 * `--goaway-chance` balances replicas. Watches simply resume; a single request is worth sending again
 * over HTTP/1.1, where the server's answer arrives whole.
 */
export const isGoAway = (cause: unknown): boolean =>
  cause instanceof Error && cause.message.includes("GOAWAY")

const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, "$1")

/** SNI carries names only: an IP address (the usual in-cluster `server`) sends none. */
const serverName = (url: URL, material: KubeTls): string | undefined =>
  material.servername ?? (isIP(hostOf(url)) === 0 ? hostOf(url) : undefined)

type TlsOptions = Pick<
  tls.ConnectionOptions,
  "ca" | "cert" | "key" | "pfx" | "passphrase" | "rejectUnauthorized" | "servername"
>

const connectOptions = (url: URL, material: KubeTls): TlsOptions => {
  const servername = serverName(url, material)
  return {
    ...material,
    ...(servername === undefined ? {} : { servername }),
  }
}

/**
 * Asks the server, on one connection closed right after, which protocol it speaks and how many
 * streams it allows per connection. Fails like a request would (refused, TLS, timeout), so the
 * caller's error mapping applies.
 */
export const negotiate = (
  server: string,
  material: KubeTls,
  timeout: Duration.DurationInput = Duration.seconds(10),
): Effect.Effect<Negotiated, Error> => {
  const url = new URL(server)
  if (url.protocol !== "https:") return Effect.succeed({ protocol: "http/1.1", streamsPerConnection: 1 })
  return Effect.async<Negotiated, Error>((resume) => {
    const socket = tls.connect({
      ...connectOptions(url, material),
      host: hostOf(url),
      port: Number(url.port || 443),
      ALPNProtocols: ["h2", "http/1.1"],
    })
    let session: http2.ClientHttp2Session | undefined
    const finish = (result: Effect.Effect<Negotiated, Error>) => {
      clearTimeout(timer)
      if (session !== undefined) session.destroy()
      socket.destroy()
      resume(result)
    }
    const timer = setTimeout(() => {
      const error = Object.assign(
        new Error(`no TLS handshake and SETTINGS within ${Duration.format(timeout)}`),
        { code: "ETIMEDOUT" },
      )
      finish(Effect.fail(error))
    }, Duration.toMillis(timeout))
    socket.once("error", (error) => finish(Effect.fail(error)))
    socket.once("secureConnect", () => {
      if (socket.alpnProtocol !== "h2") {
        finish(Effect.succeed({ protocol: "http/1.1", streamsPerConnection: 1 }))
        return
      }
      session = http2.connect(url, { createConnection: () => socket })
      session.once("error", (error) => finish(Effect.fail(error)))
      session.once("remoteSettings", (settings) =>
        finish(
          Effect.succeed({
            protocol: "h2",
            // Absent means unlimited (RFC 9113 §6.5.2); the caller's cap applies.
            streamsPerConnection: settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY,
          }),
        ),
      )
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      session?.destroy()
      socket.destroy()
    })
  })
}

/**
 * The dispatcher for what was negotiated. A proxy (`proxy-url` in the kubeconfig) tunnels each request
 * over HTTP/1.1 CONNECT.
 */
export const dispatcherFor = (
  server: string,
  material: KubeTls,
  negotiated: Negotiated,
  options: { readonly proxyUrl?: string | undefined } & KubeTransportOptions = {},
): Dispatcher => {
  const url = new URL(server)
  const connect = connectOptions(url, material)
  if (options.proxyUrl) return new ProxyAgent({ uri: options.proxyUrl, requestTls: connect })
  if (negotiated.protocol === "http/1.1") return new Pool(url.origin, { connect })
  // Headroom below the server's limit: undici frees a request's slot when its response has ended,
  // a moment before the server stops counting the stream, and a request sent into that moment
  // waits (nghttp2 queues it) until some other stream ends, which on a connection of watches can
  // be minutes.
  const serverLimit = negotiated.streamsPerConnection
  const streams = Math.max(
    1,
    Math.min(serverLimit - Math.min(10, Math.floor(serverLimit / 4)), options.maxStreamsPerConnection ?? 250),
  )
  return new StreamPool(url.origin, { connect, streams, maxConnections: options.maxConnections ?? 16 })
}

/** Negotiates, then builds the dispatchers: one call per TLS identity. */
export const make = (
  server: string,
  material: KubeTls,
  options: { readonly proxyUrl?: string | undefined } & KubeTransportOptions = {},
): Effect.Effect<KubeTransport, Error> =>
  (options.proxyUrl
    ? Effect.succeed<Negotiated>({ protocol: "http/1.1", streamsPerConnection: 1 })
    : negotiate(server, material, options.negotiateTimeout)
  ).pipe(
    Effect.map((negotiated) => ({
      negotiated,
      dispatcher: dispatcherFor(server, material, negotiated, options),
      fallback:
        negotiated.protocol === "h2"
          ? new Pool(new URL(server).origin, {
              connect: connectOptions(new URL(server), material),
              connections: 2,
            })
          : undefined,
    })),
  )
