/** Reading the bearer token of a request, comparing it, and reading the expected one from a file. */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { fingerprint, fromAuthorization, fromFile, matches } from "../../../src/ops/BearerToken.js"

const token = (header: string | undefined) => Option.map(fromAuthorization(header), Redacted.value)

describe("fromAuthorization", () => {
  it.each([
    ["Bearer abc.def-ghi", "abc.def-ghi"],
    ["bearer abc", "abc"],
    ["BEARER   abc  ", "abc"],
    ["  Bearer\tabc", "abc"],
  ])("%j carries the token", (header, expected) => {
    expect(token(header)).toEqual(Option.some(expected))
  })

  it.each([
    [undefined],
    [""],
    ["Bearer"],
    ["Bearer "],
    ["Basic dXNlcjpwYXNz"],
    ["Bearer two tokens"],
    ["Bearerabc"],
    ["Token abc"],
  ])("%j carries none", (header) => {
    expect(token(header)).toEqual(Option.none())
  })

  it("never shows the token when printed", () => {
    const found = Option.getOrThrow(fromAuthorization("Bearer s3cr3t"))
    expect(String(found)).not.toContain("s3cr3t")
    expect(JSON.stringify({ found })).not.toContain("s3cr3t")
  })
})

describe("matches and fingerprint", () => {
  const r = Redacted.make
  it("accepts the same token only", () => {
    expect(matches(r("abc"), r("abc"))).toBe(true)
    expect(matches(r("abc"), r("abd"))).toBe(false)
    expect(matches(r("abc"), r("abcd"))).toBe(false)
    expect(matches(r(""), r("abc"))).toBe(false)
  })

  it("fingerprints by content, not identity, without the token in it", () => {
    expect(fingerprint(r("abc"))).toBe(fingerprint(r("abc")))
    expect(fingerprint(r("abc"))).not.toBe(fingerprint(r("abd")))
    expect(fingerprint(r("abc"))).not.toContain("abc")
  })
})

describe("fromFile", () => {
  it.effect("reads the trimmed token; an empty file has none; a missing one fails", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "bearer-")))
      const file = join(dir, "token")
      yield* Effect.promise(() => writeFile(file, "  tok-1\n"))
      expect(Option.map(yield* fromFile(file), Redacted.value)).toEqual(Option.some("tok-1"))
      // Re-read on every call: a rotated Secret applies at once.
      yield* Effect.promise(() => writeFile(file, "tok-2"))
      expect(Option.map(yield* fromFile(file), Redacted.value)).toEqual(Option.some("tok-2"))
      yield* Effect.promise(() => writeFile(file, " \n"))
      expect(yield* fromFile(file)).toEqual(Option.none())
      expect((yield* Effect.either(fromFile(join(dir, "missing"))))._tag).toBe("Left")
      yield* Effect.promise(() => rm(dir, { recursive: true }))
    }),
  )
})
