/**
 * A lean receiver for the benchmark: answers 200 at once and timestamps what arrives. It keeps only
 * what the figures need (first arrival of each id, arrival of each churn version, request and byte
 * counts), so that it is never the bottleneck and its memory stays small.
 */
import { once } from "node:events"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** The label the churn phase writes; its value is the sequence number of the PATCH. */
export const CHURN_LABEL = "bench-churn"

export interface Counters {
  requests: number
  /** Request body bytes (what the controller serialised), without HTTP headers. */
  bodyBytes: number
  /** Request bytes including the request line and headers, as received. */
  wireBytes: number
  upserts: number
  deletes: number
}

export interface BenchReceiver {
  readonly url: string
  readonly counters: Counters
  /** id → performance.now() of its first upsert. */
  readonly firstSeen: Map<string, number>
  /** id → highest churn sequence number received. */
  readonly churnSeen: Map<string, number>
  /** [id, seq, arrivedAt] of every churn version received. */
  readonly churnArrivals: Array<readonly [string, number, number]>
  /** Ids among `expected` seen so far, and when the last of them arrived. */
  expectedSeen: () => { count: number; lastAt: number }
  readonly close: () => Promise<void>
}

export const startBenchReceiver = async (expected: ReadonlySet<string>): Promise<BenchReceiver> => {
  const counters: Counters = { requests: 0, bodyBytes: 0, wireBytes: 0, upserts: 0, deletes: 0 }
  const firstSeen = new Map<string, number>()
  const churnSeen = new Map<string, number>()
  const churnArrivals: Array<readonly [string, number, number]> = []
  let expectedCount = 0
  let expectedLastAt = 0

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const at = performance.now()
      const body = Buffer.concat(chunks)
      counters.requests++
      counters.bodyBytes += body.length
      // Request line + headers as sent: rawHeaders is what the client put on the wire.
      let head = `${req.method} ${req.url} HTTP/1.1\r\n`.length + 2
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        head += (req.rawHeaders[i]?.length ?? 0) + (req.rawHeaders[i + 1]?.length ?? 0) + 4
      }
      counters.wireBytes += head + body.length
      let payload: {
        upserts: Array<{ id: string; labels?: Record<string, string> }>
        deletes: Array<string>
      }
      try {
        payload = JSON.parse(body.toString("utf8"))
      } catch {
        res.writeHead(400).end("invalid JSON")
        return
      }
      counters.deletes += payload.deletes.length
      counters.upserts += payload.upserts.length
      for (const record of payload.upserts) {
        const id = record.id
        if (!firstSeen.has(id)) {
          firstSeen.set(id, at)
          if (expected.has(id)) {
            expectedCount++
            expectedLastAt = at
          }
        }
        const churn = record.labels?.[CHURN_LABEL]
        if (churn !== undefined) {
          const seq = Number(churn)
          churnArrivals.push([id, seq, at])
          if ((churnSeen.get(id) ?? -1) < seq) churnSeen.set(id, seq)
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/api/v1/instances/sync`,
    counters,
    firstSeen,
    churnSeen,
    churnArrivals,
    expectedSeen: () => ({ count: expectedCount, lastAt: expectedLastAt }),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
