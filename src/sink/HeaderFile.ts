/**
 * Extra request headers for the receivers, from the file `ENDPOINT_HEADERS_FILE` names: one
 * `Name: value` per line, `#` comments and blank lines ignored (a tenant id, an API key, a routing
 * header that a gateway in front of the receiver wants).
 *
 * Values may be credentials: they are held `Redacted` and no message, error or log line carries
 * one, only the file, the line number and the header's name.
 */
import { readFile } from "node:fs/promises"
import { Data, Effect, Either, Redacted, Ref } from "effect"

/** One header to send; the value never reaches a log. */
export interface Header {
  readonly name: string
  readonly value: Redacted.Redacted<string>
}

export class HeaderFileError extends Data.TaggedError("HeaderFileError")<{
  readonly file: string
  /** 1-based; undefined when the file itself could not be read. */
  readonly line: number | undefined
  readonly reason: string
}> {
  override get message(): string {
    const where = this.line === undefined ? `"${this.file}"` : `"${this.file}" line ${this.line}`
    return `ENDPOINT_HEADERS_FILE: ${where}: ${this.reason}`
  }
}

/**
 * Headers the HTTP client owns: the body's type and framing, and the connection. A file that sets
 * one would make the request wrong rather than add to it.
 */
export const RESERVED_HEADERS: ReadonlyArray<string> = [
  "content-type",
  "content-length",
  "host",
  "transfer-encoding",
  "connection",
]

export interface HeaderRules {
  /**
   * False when `ENDPOINT_TOKEN_FILE` is set: the token owns `Authorization`, and two sources for
   * one header would leave the receiver with whichever won. Without a token file, the header file
   * may carry any scheme (`Basic`, `ApiKey`, ...).
   */
  readonly authorization: boolean
}

/** RFC 9110 `token`: the characters a header name may have. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Control characters other than tab cannot be sent in a header value. */
const hasControlCharacter = (value: string) => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true
  }
  return false
}

/** Parses the file's text; the first bad line is the error. */
export const parse = (
  text: string,
  file: string,
  rules: HeaderRules,
): Either.Either<ReadonlyArray<Header>, HeaderFileError> => {
  const headers: Array<Header> = []
  const seen = new Set<string>()
  const lines = text.split(/\r?\n/)
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const fail = (reason: string) => Either.left(new HeaderFileError({ file, line: index + 1, reason }))
    const colon = line.indexOf(":")
    if (colon < 0) return fail("expected `Name: value`")
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    if (!headerName.test(name))
      return fail("expected `Name: value` with a header name of letters, digits and !#$%&'*+-.^_`|~")
    const lower = name.toLowerCase()
    if (RESERVED_HEADERS.includes(lower)) return fail(`${name} is set by the controller itself`)
    if (lower === "authorization" && !rules.authorization)
      return fail("Authorization is set by ENDPOINT_TOKEN_FILE; set it in one place only")
    if (seen.has(lower)) return fail(`${name} appears twice`)
    if (hasControlCharacter(value)) return fail(`the value of ${name} has a control character`)
    seen.add(lower)
    headers.push({ name, value: Redacted.make(value) })
  }
  return Either.right(headers)
}

/** Reads and parses the file once. */
export const read = (
  file: string,
  rules: HeaderRules,
): Effect.Effect<ReadonlyArray<Header>, HeaderFileError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (error) =>
      new HeaderFileError({
        file,
        line: undefined,
        reason: `cannot read it: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      }),
  }).pipe(Effect.flatMap((text) => parse(text, file, rules)))

/**
 * Reads the file now, failing when it is missing or invalid (a receiver that needs these headers
 * would refuse every request), and gives what to run before each request: the file read again,
 * since a mounted Secret or ConfigMap changes in place. A later read that fails keeps the last
 * valid headers and says why in a warning.
 */
export const make = (
  file: string,
  rules: HeaderRules,
): Effect.Effect<Effect.Effect<ReadonlyArray<Header>>, HeaderFileError> =>
  Effect.gen(function* () {
    const last = yield* Ref.make(yield* read(file, rules))
    return read(file, rules).pipe(
      Effect.tap((headers) => Ref.set(last, headers)),
      Effect.catchAll((error) =>
        Effect.logWarning("cannot use the receiver headers file; sending the last valid headers").pipe(
          Effect.annotateLogs({ file, line: error.line ?? "-", error: error.reason }),
          Effect.zipRight(Ref.get(last)),
        ),
      ),
    )
  })
