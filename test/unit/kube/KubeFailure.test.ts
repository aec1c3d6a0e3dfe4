import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { apiErrorOf, fromCause, parseJson, transportReason } from "../../../src/kube/KubeFailure.js"

const withCode = (message: string, code: string, cause?: unknown): Error =>
  Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code })

describe("transportReason", () => {
  it("reads the reason from the cause's code", () => {
    expect(transportReason(withCode("", "ECONNREFUSED"))).toBe("ConnectionRefused")
    expect(transportReason(withCode("", "UND_ERR_SOCKET"))).toBe("ConnectionReset")
    expect(transportReason(withCode("", "ERR_HTTP2_STREAM_ERROR"))).toBe("ConnectionReset")
    expect(transportReason(withCode("", "EAI_AGAIN"))).toBe("Dns")
    expect(transportReason(withCode("", "UND_ERR_CONNECT_TIMEOUT"))).toBe("Timeout")
    expect(transportReason(withCode("", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"))).toBe("Tls")
    expect(transportReason(new Error("no code"))).toBe("Other")
  })
})

describe("fromCause", () => {
  it("says which request failed, why, and what the cause chain said", () => {
    const error = fromCause("GET", "/api", withCode("connect ECONNREFUSED 127.0.0.1:6443", "ECONNREFUSED"))
    expect(error.reason).toBe("ConnectionRefused")
    expect(error.message).toBe(
      "GET /api: ConnectionRefused: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:6443",
    )
  })
})

describe("apiErrorOf", () => {
  it.effect("takes reason and message from a Status body, and a reason from the code without one", () =>
    Effect.gen(function* () {
      const forbidden = yield* apiErrorOf(
        "GET",
        "/api/v1/namespaces",
        403,
        undefined,
        JSON.stringify({ kind: "Status", reason: "Forbidden", message: "no", code: 403 }),
      )
      expect(forbidden.reason).toBe("Forbidden")
      expect(forbidden.message).toBe("no")
      const proxy = yield* apiErrorOf("GET", "/api", 503, "7", "<html>busy</html>")
      expect(proxy.reason).toBe("ServiceUnavailable")
      expect(proxy.message).toBe("GET /api: HTTP 503: <html>busy</html>")
      expect(proxy.retryAfterSeconds).toEqual(Option.some(7))
      expect(Option.isNone(proxy.status)).toBe(true)
    }),
  )
})

describe("parseJson", () => {
  it.effect("reads an empty body as null and fails on a body that is not JSON", () =>
    Effect.gen(function* () {
      expect(yield* parseJson("DELETE", "/x", "  ")).toBeNull()
      const error = yield* Effect.flip(parseJson("GET", "/x", "<html>"))
      expect(error._tag).toBe("KubeDecodeError")
    }),
  )
})
