/**
 * A real receiver on a loopback socket, for tests of the sender and of the whole controller. It
 * applies payloads the way the contract says a receiver does (deletes, then upserts), keeps every
 * request it saw, and can be told how to answer: a status, a delay, a `Retry-After`, a dropped
 * connection, or no answer at all. With `maxBodyBytes` it refuses larger bodies with 413, as
 * cluster-whisperer does above 5 MiB.
 */
import { once } from "node:events"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import type { InstanceRecord, SyncPayload } from "../../src/record/Payload.js"

export type Answer =
  | { readonly kind: "status"; readonly status: number; readonly body?: string; readonly retryAfter?: string }
  | { readonly kind: "hang" }
  | { readonly kind: "destroy" }
  | { readonly kind: "garbage" }

export interface ReceivedRequest {
  readonly at: number
  /** Bytes of the request body. */
  readonly bytes: number
  /** The request's path: tells senders apart when each was given its own (`paths`). */
  readonly path: string
  readonly payload: SyncPayload
  readonly answer: Answer
  readonly headers: http.IncomingHttpHeaders
}

/** Decides the answer to each request; default: apply and answer 200. */
export type Script = (payload: SyncPayload, index: number, path: string) => Answer | undefined

export interface Receiver {
  readonly url: string
  /** The URL of another of its `paths`. */
  urlFor(path: string): string
  /** Every request, in arrival order, whatever the answer. */
  readonly requests: ReadonlyArray<ReceivedRequest>
  /** The index as it stands after the requests that were answered 2xx. */
  readonly state: ReadonlyMap<string, InstanceRecord>
  /** Upserts acknowledged, in order, per id: lets tests check that no older state followed a newer one. */
  readonly history: ReadonlyMap<string, ReadonlyArray<InstanceRecord | null>>
  script: Script
  /** Stops listening (clients get connection refused) without forgetting the state. */
  stop(): Promise<void>
  /** Listens again on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

export const startReceiver = async (
  options: {
    port?: number
    path?: string
    /** Every path it accepts (default: `path` alone); each request records its own. */
    paths?: ReadonlyArray<string>
    /** Server keep-alive timeout (ms; 0 keeps idle connections open for good). Node's default: 5 s. */
    keepAliveTimeout?: number
    /** Serve HTTPS with this certificate and key (PEM). */
    tls?: { readonly cert: Buffer; readonly key: Buffer }
    /** Larger bodies are answered 413 (and recorded) whatever the script says. */
    maxBodyBytes?: number
  } = {},
): Promise<Receiver> => {
  const path = options.path ?? "/api/v1/instances/sync"
  const accepted = new Set(options.paths ?? [path])
  const requests: Array<ReceivedRequest> = []
  const state = new Map<string, InstanceRecord>()
  const history = new Map<string, Array<InstanceRecord | null>>()
  const sockets = new Set<import("node:net").Socket>()
  const remember = (id: string, value: InstanceRecord | null) => {
    const list = history.get(id) ?? []
    list.push(value)
    history.set(id, list)
  }

  const handler: http.RequestListener = (req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const requestPath = req.url ?? ""
      if (req.method !== "POST" || !accepted.has(requestPath)) {
        res.writeHead(404).end("not found")
        return
      }
      const body = Buffer.concat(chunks)
      let payload: SyncPayload
      try {
        payload = JSON.parse(body.toString("utf8")) as SyncPayload
      } catch {
        res.writeHead(400).end("invalid JSON")
        return
      }
      const tooLarge = options.maxBodyBytes !== undefined && body.length > options.maxBodyBytes
      const answer: Answer = tooLarge
        ? { kind: "status", status: 413, body: "request entity too large" }
        : (receiver.script(payload, requests.length, requestPath) ?? { kind: "status", status: 200 })
      requests.push({
        at: Date.now(),
        bytes: body.length,
        path: requestPath,
        payload,
        answer,
        headers: req.headers,
      })
      switch (answer.kind) {
        case "hang":
          return
        case "destroy":
          req.socket.destroy()
          return
        case "garbage":
          req.socket.end("HTTP/1.1 2OO BROKEN\r\n\r\n{{{")
          return
        case "status": {
          if (answer.status >= 200 && answer.status < 300) {
            for (const id of payload.deletes) {
              state.delete(id)
              remember(id, null)
            }
            for (const record of payload.upserts) {
              // A capabilities payload carries CRD names instead of records.
              const id = typeof record === "string" ? (record as string) : record.id
              state.set(id, record)
              remember(id, record)
            }
          }
          const headers: Record<string, string> = { "content-type": "application/json" }
          if (answer.retryAfter !== undefined) headers["retry-after"] = answer.retryAfter
          res.writeHead(answer.status, headers).end(answer.body ?? "{}")
        }
      }
    })
  }

  const create = (): http.Server => {
    const server = options.tls
      ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
      : http.createServer(handler)
    if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
    return server
  }
  let server = create()
  const track = (s: http.Server) =>
    s.on("connection", (socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
  track(server)
  server.listen(options.port ?? 0, "127.0.0.1")
  await once(server, "listening")
  const port = (server.address() as AddressInfo).port

  const stop = async () => {
    for (const socket of sockets) socket.destroy()
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  const origin = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`
  const receiver: Receiver = {
    url: `${origin}${path}`,
    urlFor: (other) => `${origin}${other}`,
    requests,
    state,
    history,
    script: () => undefined,
    stop,
    async start() {
      server = create()
      track(server)
      server.listen(port, "127.0.0.1")
      await once(server, "listening")
    },
    close: stop,
  }
  return receiver
}
