import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  excerpt,
  parseRetryAfter,
  parseStatus,
  reasonForCode,
  retryAfterSeconds,
} from "../../../src/kube/KubeStatus.js"

const forbidden = JSON.stringify({
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: "Failure",
  message:
    'namespaces is forbidden: User "bob" cannot list resource "namespaces" in API group "" at the cluster scope',
  reason: "Forbidden",
  details: { kind: "namespaces" },
  code: 403,
})

const now = new Date("2026-11-25T12:00:00Z")

describe("parseStatus", () => {
  it.effect("decodes the API server's Status body", () =>
    Effect.sync(() => {
      const status = Option.getOrThrow(parseStatus(forbidden))
      expect(status.code).toBe(403)
      expect(status.reason).toBe("Forbidden")
      expect(status.message).toContain('User "bob" cannot list')
      expect(status.details?.kind).toBe("namespaces")
    }),
  )

  it.effect("keeps retryAfterSeconds and causes from details", () =>
    Effect.sync(() => {
      const status = Option.getOrThrow(
        parseStatus(
          JSON.stringify({
            kind: "Status",
            code: 429,
            reason: "TooManyRequests",
            details: { retryAfterSeconds: 3, causes: [{ reason: "x", message: "y" }] },
          }),
        ),
      )
      expect(status.details?.retryAfterSeconds).toBe(3)
      expect(status.details?.causes?.[0]?.message).toBe("y")
    }),
  )

  it.effect("is None for bodies that are not a Status", () =>
    Effect.sync(() => {
      expect(Option.isNone(parseStatus("<html>502 Bad Gateway</html>"))).toBe(true)
      expect(Option.isNone(parseStatus(""))).toBe(true)
      expect(Option.isNone(parseStatus('{"kind":"Namespace","metadata":{}}'))).toBe(true)
      expect(Option.isNone(parseStatus('{"kind":"Status","code":"not a number"}'))).toBe(true)
    }),
  )
})

describe("reasonForCode", () => {
  it.effect("maps bare HTTP statuses to the reasons client-go uses", () =>
    Effect.sync(() => {
      expect(reasonForCode(403)).toBe("Forbidden")
      expect(reasonForCode(404)).toBe("NotFound")
      expect(reasonForCode(410)).toBe("Gone")
      expect(reasonForCode(429)).toBe("TooManyRequests")
      expect(reasonForCode(504)).toBe("Timeout")
      expect(reasonForCode(418)).toBe("Unknown")
    }),
  )
})

describe("parseRetryAfter", () => {
  it.effect("reads delta-seconds", () =>
    Effect.sync(() => {
      expect(parseRetryAfter("5", now)).toEqual(Option.some(5))
      expect(parseRetryAfter(" 0 ", now)).toEqual(Option.some(0))
    }),
  )

  it.effect("reads an HTTP-date relative to now, and a past date as 0", () =>
    Effect.sync(() => {
      expect(parseRetryAfter("Wed, 25 Nov 2026 12:00:30 GMT", now)).toEqual(Option.some(30))
      expect(parseRetryAfter("Wed, 25 Nov 2026 11:00:00 GMT", now)).toEqual(Option.some(0))
    }),
  )

  it.effect("rejects garbage instead of guessing", () =>
    Effect.sync(() => {
      expect(parseRetryAfter("soon", now)).toEqual(Option.none())
      expect(parseRetryAfter("-3", now)).toEqual(Option.none())
      expect(parseRetryAfter("1.5", now)).toEqual(Option.none())
      expect(parseRetryAfter("", now)).toEqual(Option.none())
    }),
  )
})

describe("retryAfterSeconds", () => {
  const status = parseStatus(JSON.stringify({ kind: "Status", code: 429, details: { retryAfterSeconds: 7 } }))

  it.effect("prefers the header over details.retryAfterSeconds", () =>
    Effect.sync(() => {
      expect(retryAfterSeconds("2", status, now)).toEqual(Option.some(2))
    }),
  )

  it.effect("falls back to details.retryAfterSeconds when the header is absent or unreadable", () =>
    Effect.sync(() => {
      expect(retryAfterSeconds(undefined, status, now)).toEqual(Option.some(7))
      expect(retryAfterSeconds("later", status, now)).toEqual(Option.some(7))
    }),
  )

  it.effect("is None when neither says anything", () =>
    Effect.sync(() => {
      expect(retryAfterSeconds(undefined, Option.none(), now)).toEqual(Option.none())
    }),
  )
})

describe("excerpt", () => {
  it.effect("flattens whitespace and cuts long bodies", () =>
    Effect.sync(() => {
      expect(excerpt("a\n  b\tc")).toBe("a b c")
      const cut = excerpt("x".repeat(600), 10)
      expect(cut).toBe(`${"x".repeat(10)}…`)
    }),
  )
})
