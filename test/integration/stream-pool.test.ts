/**
 * The API server transport's connection pool against a real HTTP/2 server over TLS on a loopback
 * socket: how many connections a burst of long-lived requests opens, and that freed streams are
 * used before a new connection is.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Dispatcher } from "undici"
import { StreamPool } from "../../src/kube/StreamPool.js"
import { makePki } from "../kube/pki.js"

/** Streams the server allows per connection: the pool is told the same. */
const SERVER_STREAMS = 10

let dir: string
let ca: Buffer
let server: http2.Http2SecureServer
let origin: string
/** Connections the server has accepted since the test began. */
let sessions = 0
/** Open answers, by path: the test ends them. */
const open = new Map<string, http2.ServerHttp2Stream>()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-pool-"))
  const pki = await makePki(dir, "nobody")
  ca = await readFile(pki.caFile)
  server = http2.createSecureServer({
    cert: await readFile(pki.serving.certFile),
    key: await readFile(pki.serving.keyFile),
    settings: { maxConcurrentStreams: SERVER_STREAMS },
  })
  server.on("session", () => {
    sessions++
  })
  // Every answer is a watch: its head at once, its body when the test ends it.
  server.on("stream", (stream, headers) => {
    open.set(String(headers[":path"]), stream)
    stream.respond({ ":status": 200, "content-type": "application/json" })
    stream.write("\n")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await rm(dir, { recursive: true, force: true })
})

const poolOf = (maxConnections: number) =>
  new StreamPool(origin, { connect: { ca }, streams: SERVER_STREAMS, maxConnections })

/** Sends GETs for `paths` in one tick and resolves when every head has arrived. */
const watch = (pool: Dispatcher, paths: ReadonlyArray<string>) =>
  Promise.all(paths.map((path) => pool.request({ origin, path, method: "GET" })))

const paths = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `/${prefix}/${i}`)

/** Ends the open answers at `paths` and waits until each response has been read to its end. */
const end = async (responses: ReadonlyArray<Dispatcher.ResponseData>, ended: ReadonlyArray<string>) => {
  for (const path of ended) open.get(path)?.end()
  await Promise.all(responses.map((response) => response.body.text()))
}

describe("StreamPool", () => {
  it("carries a burst of requests on as few connections as the server's stream limit allows", async () => {
    sessions = 0
    const pool = poolOf(16)
    const first = await watch(pool, paths("burst", 25))
    expect(first.every((response) => response.statusCode === 200)).toBe(true)
    // 25 in one tick, at 10 streams each: three connections, not one per request in the handshake.
    expect(sessions).toBe(3)

    // Ten streams end; ten new requests take their places instead of opening a connection.
    await end(first.slice(0, 10), paths("burst", 10))
    const second = await watch(pool, paths("again", 10))
    expect(second.length).toBe(10)
    expect(sessions).toBe(3)
    await pool.destroy()
  })

  it("beyond its connection bound, a request waits for a stream to end", async () => {
    sessions = 0
    const pool = poolOf(2)
    const held = await watch(pool, paths("held", 20))
    expect(sessions).toBe(2)
    let answered = false
    const waiting = watch(pool, ["/waiting"]).then((responses) => {
      answered = true
      return responses
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(answered).toBe(false)
    await end(held.slice(0, 1), ["/held/0"])
    const [late] = await waiting
    expect(late?.statusCode).toBe(200)
    expect(sessions).toBe(2)
    await pool.destroy()
  })
})
