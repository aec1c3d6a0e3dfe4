import * as HttpApp from "@effect/platform/HttpApp"
import { describe, expect, it } from "@effect/vitest"
import { probes } from "../../../src/leader/Standby.js"

const handler = HttpApp.toWebHandler(probes("ns/sync"))
const get = async (path: string) => {
  const response = await handler(new Request(`http://standby${path}`))
  return { status: response.status, body: await response.text() }
}

describe("the probes of a standby", () => {
  it("is alive: /healthz 200", async () => {
    expect(await get("/healthz")).toEqual({ status: 200, body: "ok" })
  })

  it("is ready, and says it stands by for which lease: /readyz 200 (a 503 would stall rolling updates)", async () => {
    expect(await get("/readyz")).toEqual({
      status: 200,
      body: "standby: waiting for the leader-election lease ns/sync",
    })
  })

  it("serves nothing else (the API port is the leader's)", async () => {
    expect((await get("/metrics")).status).toBe(404)
  })
})
