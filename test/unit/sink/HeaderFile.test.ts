import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Logger, Redacted } from "effect"
import * as HeaderFile from "../../../src/sink/HeaderFile.js"

const FILE = "/etc/receiver/headers"
const open = { authorization: true }

const parsed = (text: string, rules = open) =>
  Either.map(HeaderFile.parse(text, FILE, rules), (headers) =>
    headers.map((h) => [h.name, Redacted.value(h.value)]),
  )

const problem = (text: string, rules = open) =>
  Either.match(HeaderFile.parse(text, FILE, rules), {
    onLeft: (error) => error.message,
    onRight: () => "parsed",
  })

describe("HeaderFile.parse", () => {
  it("reads `Name: value` lines, trimming, skipping comments and blank lines", () => {
    expect(
      parsed(
        [
          "# tenant routing",
          "X-Tenant: team-a",
          "",
          "   ",
          "  X-Api-Key :  s3cret:with:colons  ",
          "\t# indented comment",
          "X-Empty:",
          "Authorization: Basic dXNlcjpwYXNz\r",
        ].join("\n"),
      ),
    ).toEqual(
      Either.right([
        ["X-Tenant", "team-a"],
        ["X-Api-Key", "s3cret:with:colons"],
        ["X-Empty", ""],
        ["Authorization", "Basic dXNlcjpwYXNz"],
      ]),
    )
    expect(parsed("")).toEqual(Either.right([]))
  })

  it("names the file and line of a bad line, and never its value", () => {
    expect(problem("X-A: 1\nBearer s3cret")).toBe(
      `ENDPOINT_HEADERS_FILE: "${FILE}" line 2: expected \`Name: value\``,
    )
    expect(problem("# c\n\nX Tenant: s3cret")).toMatch(
      /^ENDPOINT_HEADERS_FILE: "\/etc\/receiver\/headers" line 3: expected/,
    )
    expect(problem(": s3cret")).toMatch(/line 1: expected `Name: value` with a header name/)
    expect(problem("X-A: s3cret\u0000")).toBe(
      `ENDPOINT_HEADERS_FILE: "${FILE}" line 1: the value of X-A has a control character`,
    )
    for (const text of ["X-A: 1\nBearer s3cret", "X Tenant: s3cret", ": s3cret", "X-A: s3cret\u0000"])
      expect(problem(text)).not.toContain("s3cret")
  })

  it("refuses the headers the client owns, in any case", () => {
    expect(problem("content-type: text/plain")).toBe(
      `ENDPOINT_HEADERS_FILE: "${FILE}" line 1: content-type is set by the controller itself`,
    )
    for (const name of ["Content-Type", "Content-Length", "HOST", "Transfer-Encoding", "Connection"])
      expect(problem(`${name}: x`), name).toContain("is set by the controller itself")
  })

  it("refuses Authorization when ENDPOINT_TOKEN_FILE owns it, allows it otherwise", () => {
    expect(problem("authorization: ApiKey k", { authorization: false })).toBe(
      `ENDPOINT_HEADERS_FILE: "${FILE}" line 1: Authorization is set by ENDPOINT_TOKEN_FILE; set it in one place only`,
    )
    expect(problem("authorization: ApiKey k", { authorization: true })).toBe("parsed")
  })

  it("refuses a header given twice (names are case-insensitive)", () => {
    expect(problem("X-Tenant: a\nx-tenant: b")).toBe(
      `ENDPOINT_HEADERS_FILE: "${FILE}" line 2: x-tenant appears twice`,
    )
  })

  it("values are Redacted: printing a header shows no value", () => {
    const headers = Either.getOrThrow(HeaderFile.parse("X-Api-Key: s3cret", FILE, open))
    expect(String(headers[0]!.value)).not.toContain("s3cret")
    expect(JSON.stringify(headers)).not.toContain("s3cret")
  })
})

describe("HeaderFile.make", () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "headers-"))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it.effect("fails at once on a missing or invalid file", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(HeaderFile.make(join(dir, "none"), open))
      expect(missing.message).toBe(`ENDPOINT_HEADERS_FILE: "${join(dir, "none")}": cannot read it: ENOENT`)
      const bad = join(dir, "bad")
      yield* Effect.promise(() => writeFile(bad, "X-A: 1\nnot a header\n"))
      expect((yield* Effect.flip(HeaderFile.make(bad, open))).line).toBe(2)
    }),
  )

  it.effect(
    "re-reads the file each time; a later bad read keeps the last valid headers and warns without values",
    () =>
      Effect.gen(function* () {
        const file = join(dir, "rotating")
        const write = (text: string) => Effect.promise(() => writeFile(file, text))
        const lines: Array<string> = []
        const capture = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ annotations, message }) =>
            lines.push(JSON.stringify({ message, annotations: [...annotations] })),
          ),
        )
        const values = (headers: ReadonlyArray<HeaderFile.Header>) =>
          headers.map((h) => `${h.name}=${Redacted.value(h.value)}`)

        yield* write("X-Key: one-s3cret\n")
        const current = yield* HeaderFile.make(file, open)
        expect(values(yield* current)).toEqual(["X-Key=one-s3cret"])
        yield* write("X-Key: two-s3cret\nX-More: 2\n")
        expect(values(yield* current)).toEqual(["X-Key=two-s3cret", "X-More=2"])
        yield* write("X-Key: three-s3cret\nbroken three-s3cret\n")
        expect(values(yield* current.pipe(Effect.provide(capture)))).toEqual(["X-Key=two-s3cret", "X-More=2"])
        expect(lines).toHaveLength(1)
        expect(lines[0]).toContain(`["line",2]`)
        expect(lines[0]).toContain(file)
        expect(lines.join("\n")).not.toContain("s3cret")
        yield* Effect.promise(() => rm(file))
        expect(values(yield* current.pipe(Effect.provide(capture)))).toEqual(["X-Key=two-s3cret", "X-More=2"])
        expect(lines[1]).toContain("ENOENT")
      }),
  )
})
