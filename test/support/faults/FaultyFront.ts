/**
 * An HTTP front in front of a `Receiver` for the faults the receiver itself cannot script: a slow
 * answer (the request reaches the receiver only after a delay) and an answer lost after the
 * receiver applied the payload (the connection closes mid-response, so the sender must retry and
 * the receiver sees the same payload twice).
 */
import { once } from "node:events"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** The request body as text: tests that pick a fault by content parse it themselves. */
export type SyncPayloadText = string

export type FrontAction =
  /**
   * Forward to the receiver after `delayMs`, relay its answer. With `late`, the delay is meant to
   * outlast the sender's timeout: the receiver applies a payload the sender has given up on (and
   * may since have superseded), the stale-overwrite case. Such requests reach the receiver with the
   * header `x-fault-late: 1`, so tests can tell them apart.
   */
  | {
      readonly kind: "forward"
      readonly delayMs?: number
      /** Held until this settles (after `delayMs`), for tests that release a request at a chosen point. */
      readonly until?: Promise<unknown>
      readonly late?: boolean
    }
  /**
   * Forward (the receiver applies it), then lose the answer: `headers` closes the connection in the
   * middle of the status line's headers, `body` after a 200 status and half the body.
   */
  | { readonly kind: "cut-response"; readonly where: "headers" | "body" }

export interface FaultyFront {
  readonly url: string
  /** How each request was handled, in arrival order. */
  readonly actions: ReadonlyArray<FrontAction>
  decide: (index: number, payload: SyncPayloadText) => FrontAction
  close(): Promise<void>
}

export const startFaultyFront = async (target: string): Promise<FaultyFront> => {
  const targetUrl = new URL(target)
  const actions: Array<FrontAction> = []
  const relay = (body: Buffer, headers: http.IncomingHttpHeaders) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer } | undefined>(
      (resolve) => {
        const forward = http.request(
          {
            host: targetUrl.hostname,
            port: targetUrl.port,
            method: "POST",
            path: targetUrl.pathname,
            headers: { ...headers, host: targetUrl.host, "content-length": body.length },
            agent: false,
          },
          (answer) => {
            const chunks: Array<Buffer> = []
            answer.on("data", (c: Buffer) => chunks.push(c))
            answer.on("end", () =>
              resolve({
                status: answer.statusCode ?? 502,
                headers: answer.headers,
                body: Buffer.concat(chunks),
              }),
            )
            answer.on("error", () => resolve(undefined))
          },
        )
        forward.on("error", () => resolve(undefined))
        forward.end(body)
      },
    )

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", async () => {
      const body = Buffer.concat(chunks)
      const action = front.decide(actions.length, body.toString("utf8"))
      actions.push(action)
      if (action.kind === "forward" && (action.delayMs ?? 0) > 0) {
        await new Promise((r) => setTimeout(r, action.delayMs))
      }
      if (action.kind === "forward" && action.until !== undefined) await action.until
      // The sender may have given up meanwhile; a real receiver would still apply what it got.
      const headers =
        action.kind === "forward" && action.late ? { ...req.headers, "x-fault-late": "1" } : req.headers
      const answer = await relay(body, headers)
      if (answer === undefined) {
        req.socket.destroy()
        return
      }
      if (action.kind === "cut-response") {
        req.socket.end(
          action.where === "headers"
            ? "HTTP/1.1 200 OK\r\ncontent-ty"
            : // Headers promise 64 bytes; five arrive, then the connection closes.
              'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n{"acc',
        )
        return
      }
      if (res.destroyed) return
      res.writeHead(answer.status, { "content-type": answer.headers["content-type"] ?? "application/json" })
      res.end(answer.body)
    })
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const front: FaultyFront = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${targetUrl.pathname}`,
    actions,
    decide: () => ({ kind: "forward" }),
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return front
}
