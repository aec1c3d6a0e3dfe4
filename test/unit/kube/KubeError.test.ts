import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  isForbidden,
  isGone,
  isNotFound,
  isRetriable,
  KubeApiError,
  KubeDecodeError,
  KubeTransportError,
} from "../../../src/kube/KubeError.js"

const apiError = (code: number, reason: string, retryAfter?: number) =>
  new KubeApiError({
    method: "GET",
    path: "/api/v1/pods",
    code,
    reason,
    message: reason,
    retryAfterSeconds: Option.fromNullable(retryAfter),
    status: Option.none(),
    body: "",
  })

describe("KubeApiError.fromWatchEvent", () => {
  it.effect("decodes the Status of an ERROR event (410 Expired on a too-old resourceVersion)", () =>
    Effect.sync(() => {
      const error = KubeApiError.fromWatchEvent("GET", "/api/v1/configmaps", {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "too old resource version: 1 (2000)",
        reason: "Expired",
        code: 410,
      })
      expect(error._tag).toBe("KubeApiError")
      expect(error.code).toBe(410)
      expect(error.reason).toBe("Expired")
      expect(error.message).toBe("too old resource version: 1 (2000)")
      expect(isGone(error)).toBe(true)
      expect(isRetriable(error)).toBe(false)
    }),
  )

  it.effect("still gives an error for an ERROR event that is not a Status", () =>
    Effect.sync(() => {
      const error = KubeApiError.fromWatchEvent("GET", "/x", { weird: true })
      expect(error.code).toBe(500)
      expect(error.reason).toBe("InternalError")
      expect(error.message).toContain('{"weird":true}')
      expect(Option.isNone(error.status)).toBe(true)
    }),
  )
})

describe("predicates", () => {
  it.effect("classify API errors by code and reason", () =>
    Effect.sync(() => {
      expect(isForbidden(apiError(403, "Forbidden"))).toBe(true)
      expect(isNotFound(apiError(404, "NotFound"))).toBe(true)
      expect(isNotFound(apiError(403, "Forbidden"))).toBe(false)
      expect(isGone(apiError(410, "Gone"))).toBe(true)
      expect(isGone(apiError(500, "Expired"))).toBe(true)
      expect(isGone(new Error("x"))).toBe(false)
    }),
  )

  it.effect("treat throttling, server errors, Retry-After and transport failures as retriable", () =>
    Effect.sync(() => {
      expect(isRetriable(apiError(429, "TooManyRequests", 1))).toBe(true)
      expect(isRetriable(apiError(503, "ServiceUnavailable"))).toBe(true)
      expect(isRetriable(apiError(500, "InternalError"))).toBe(true)
      expect(isRetriable(apiError(504, "Timeout"))).toBe(true)
      expect(isRetriable(apiError(409, "Conflict", 2))).toBe(true)
      expect(
        isRetriable(
          new KubeTransportError({ method: "GET", path: "/", reason: "ConnectionRefused", message: "x" }),
        ),
      ).toBe(true)
    }),
  )

  it.effect("treat client errors, 410 and 501 as not retriable", () =>
    Effect.sync(() => {
      expect(isRetriable(apiError(403, "Forbidden"))).toBe(false)
      expect(isRetriable(apiError(404, "NotFound"))).toBe(false)
      expect(isRetriable(apiError(410, "Gone"))).toBe(false)
      expect(isRetriable(apiError(501, "Unknown"))).toBe(false)
      expect(isRetriable(new KubeDecodeError({ method: "GET", path: "/", message: "x" }))).toBe(false)
    }),
  )
})
