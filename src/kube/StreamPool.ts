/**
 * HTTP/2 connections to one origin, filled the way client-go fills them: a request goes to the
 * first connection with a free stream, and a connection opens only when every open one is full.
 *
 * undici's `Pool` opens a connection whenever the others are momentarily busy, and a connection
 * still in its TLS handshake counts as busy: a burst of requests at start-up (a thousand watches
 * in one tick) opened up to its bound whatever the load, five connections for sixty watches. Here
 * a request waits in a connecting connection's queue like on an open one, so sixty watches share
 * one connection and a thousand share ⌈1,000 / streams⌉.
 */
import { Client, Dispatcher } from "undici"

export interface StreamPoolOptions {
  readonly connect: NonNullable<Client.Options["connect"]>
  /** Requests one connection carries at once. */
  readonly streams: number
  /** Connections at most; beyond `maxConnections × streams` requests wait in the least loaded one. */
  readonly maxConnections: number
}

export class StreamPool extends Dispatcher {
  private readonly clients: Array<Client> = []

  constructor(
    private readonly origin: string,
    private readonly options: StreamPoolOptions,
  ) {
    super()
  }

  /**
   * Every request counts as idempotent. undici holds a request it deems non-idempotent (POST, PUT,
   * PATCH, DELETE) until its connection has nothing else in flight, so that a failure cannot take a
   * half-sent neighbour with it; on a connection of watches that is never. HTTP/2 streams fail
   * independently, and undici retries nothing here, so every request may share the connection.
   */
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.pick().dispatch({ ...options, idempotent: true }, handler)
    // The pool does its own accounting: a caller never needs to wait for `drain`.
    return true
  }

  /** The first connection with a free stream, a new one while under the bound, else the least loaded. */
  private pick(): Client {
    let least: Client | undefined
    let leastSize = Number.POSITIVE_INFINITY
    for (const client of this.clients) {
      // `size`: requests queued or running on the connection, until their response has ended.
      const size = client.stats.size
      if (size < this.options.streams) return client
      if (size < leastSize) {
        least = client
        leastSize = size
      }
    }
    if (least === undefined || this.clients.length < this.options.maxConnections) {
      const client = new Client(this.origin, {
        connect: this.options.connect,
        allowH2: true,
        // The client queues what is beyond its streams instead of handing it to nghttp2, where a
        // request would wait, unseen, for a stream of the server's to end.
        pipelining: this.options.streams,
        maxConcurrentStreams: this.options.streams,
      })
      this.clients.push(client)
      return client
    }
    return least
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    const closed = Promise.all(this.clients.map((client) => client.close())).then(() => undefined)
    if (callback === undefined) return closed
    closed.then(callback, callback)
  }

  override destroy(): Promise<void>
  override destroy(error: Error | null): Promise<void>
  override destroy(callback: () => void): void
  override destroy(error: Error | null, callback: () => void): void
  override destroy(
    errorOrCallback?: Error | null | (() => void),
    callback?: () => void,
  ): Promise<void> | void {
    const error = typeof errorOrCallback === "function" ? null : (errorOrCallback ?? null)
    const done = typeof errorOrCallback === "function" ? errorOrCallback : callback
    const destroyed = Promise.all(this.clients.map((client) => client.destroy(error))).then(() => undefined)
    if (done === undefined) return destroyed
    destroyed.then(done, done)
  }
}
