import { describe, expect, it } from "@effect/vitest"
import { codeOf, describeCause, describeFailure } from "../../../src/http/DescribeCause.js"

const withCode = (message: string, code: string | number, cause?: unknown): Error =>
  Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code })

describe("describeCause", () => {
  it("names each link of the chain with its code", () => {
    const refused = withCode("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED")
    expect(describeCause(new Error("fetch failed", { cause: refused }))).toBe(
      "fetch failed: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1",
    )
  })

  it("says only the code of a link without a message, and describes a non-Error as itself", () => {
    expect(describeCause(withCode("", "ECONNREFUSED"))).toBe("ECONNREFUSED")
    expect(describeCause("socket hang up")).toBe("socket hang up")
  })

  it("stops after four links", () => {
    let chain: Error = new Error("5")
    for (const n of ["4", "3", "2", "1"]) chain = new Error(n, { cause: chain })
    expect(describeCause(chain)).toBe("1: 2: 3: 4")
  })
})

describe("describeFailure", () => {
  it("adds the cause chain to the error's own message, and only an Error cause", () => {
    const reset = withCode("other side closed", "UND_ERR_SOCKET")
    expect(describeFailure({ message: "Transport error (POST http://x)", cause: reset })).toBe(
      "Transport error (POST http://x): UND_ERR_SOCKET: other side closed",
    )
    expect(describeFailure({ message: "HTTP 503", cause: { status: 503 } })).toBe("HTTP 503")
    expect(describeFailure({ message: "HTTP 503" })).toBe("HTTP 503")
  })
})

describe("codeOf", () => {
  it("reads string and numeric codes, nothing else", () => {
    expect(codeOf(withCode("x", "EPIPE"))).toBe("EPIPE")
    expect(codeOf({ code: 35 })).toBe("35")
    expect(codeOf({ code: { nested: true } })).toBeUndefined()
    expect(codeOf(null)).toBeUndefined()
  })
})
