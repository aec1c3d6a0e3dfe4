/**
 * The resync endpoint's answers, with the token mode against a real file and the resync replaced
 * by a stub: 401 without or with a wrong token (and a challenge), 503 when the token file cannot
 * be read, 429 with Retry-After when the rate limit refuses, 200 with the Go controller's fields
 * otherwise; /metrics and /healthz need no credentials.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as HttpApp from "@effect/platform/HttpApp"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { router } from "../../../src/ops/ApiServer.js"
import { Resync, type ResyncOutcome } from "../../../src/ops/Resync.js"
import { fromTokenFile, ResyncAuth } from "../../../src/ops/ResyncAuth.js"
import { ResyncRateLimited } from "../../../src/ops/ResyncGate.js"

const outcome: ResyncOutcome = { types: 3, upserts: 7, deletes: 1, incomplete: [] }

let dir: string
let tokenFile: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "api-server-"))
  tokenFile = join(dir, "token")
  await writeFile(tokenFile, "right-token\n")
})
afterAll(() => rm(dir, { recursive: true }))

const handler = (request: Resync["Type"]["request"], file = tokenFile) =>
  HttpApp.toWebHandler(
    router.pipe(
      Effect.provideService(ResyncAuth, fromTokenFile(file)),
      Effect.provideService(Resync, Resync.of({ run: Effect.succeed(outcome), request })),
    ),
  )

const call = async (
  handle: (request: Request) => Promise<Response>,
  method: string,
  path: string,
  authorization?: string,
) => {
  const response = await handle(
    new Request(`http://controller${path}`, {
      method,
      headers: authorization === undefined ? {} : { authorization },
    }),
  )
  const text = await response.text()
  return { status: response.status, headers: response.headers, text }
}

const post = (
  authorization?: string,
  request: Resync["Type"]["request"] = Effect.succeed(outcome),
  file?: string,
) => call(handler(request, file), "POST", "/api/v1/resync", authorization)

describe("POST /api/v1/resync with RESYNC_TOKEN_FILE", () => {
  it("no Authorization header: 401 with a Bearer challenge and a JSON reason", async () => {
    const answer = await post()
    expect(answer.status).toBe(401)
    expect(answer.headers.get("www-authenticate")).toMatch(/^Bearer /)
    expect(JSON.parse(answer.text)).toEqual({
      status: "error",
      message: "a bearer token is required (Authorization: Bearer <token>)",
    })
  })

  it("a wrong token, or another scheme: 401, and the token is not echoed", async () => {
    for (const authorization of [
      "Bearer wrong-token",
      "Bearer right-token-but-longer",
      "Basic right-token",
    ]) {
      const answer = await post(authorization)
      expect(answer.status, authorization).toBe(401)
      expect(answer.text).not.toContain("wrong-token")
      expect(JSON.parse(answer.text).status).toBe("error")
    }
  })

  it("the right token: 200 with the Go controller's fields and what was queued", async () => {
    const answer = await post("Bearer right-token")
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.text)).toEqual({
      status: "ok",
      resources: 7,
      message: "resynced 3 types: queued 7 upserts and 1 deletes",
      ...outcome,
    })
  })

  it("the token file re-read on every request: a rotated token applies at once", async () => {
    const rotated = join(dir, "rotated")
    await writeFile(rotated, "first")
    expect((await post("Bearer first", undefined, rotated)).status).toBe(200)
    await writeFile(rotated, "second")
    expect((await post("Bearer first", undefined, rotated)).status).toBe(401)
    expect((await post("Bearer second", undefined, rotated)).status).toBe(200)
  })

  it("an unreadable or empty token file: 503 whatever was sent", async () => {
    expect((await post("Bearer right-token", undefined, join(dir, "missing"))).status).toBe(503)
    const empty = join(dir, "empty")
    await writeFile(empty, "\n")
    expect((await post("Bearer ", undefined, empty)).status).toBe(401)
    expect((await post("Bearer x", undefined, empty)).status).toBe(503)
  })

  it("rate-limited: 429 with Retry-After in whole seconds, rounded up", async () => {
    const answer = await post(
      "Bearer right-token",
      Effect.fail(new ResyncRateLimited({ retryAfter: Duration.millis(41_200) })),
    )
    expect(answer.status).toBe(429)
    expect(answer.headers.get("retry-after")).toBe("42")
    expect(JSON.parse(answer.text).status).toBe("error")
  })

  it("rate limit checked after the credentials: an unauthenticated caller gets 401, not 429", async () => {
    const answer = await post(
      undefined,
      Effect.fail(new ResyncRateLimited({ retryAfter: Duration.seconds(5) })),
    )
    expect(answer.status).toBe(401)
  })

  it("/metrics and /healthz stay open", async () => {
    const handle = handler(Effect.succeed(outcome))
    expect((await call(handle, "GET", "/healthz")).status).toBe(200)
    const metrics = await call(handle, "GET", "/metrics")
    expect(metrics.status).toBe(200)
    expect(metrics.text).toContain("process_resident_memory_bytes")
  })
})
