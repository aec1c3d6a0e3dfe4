/**
 * Bearer tokens as the resync endpoint receives and checks them: read from the `Authorization`
 * header, compared with the expected token in constant time, and read from a mounted file.
 * Tokens are kept in `Redacted` so that they never reach a log.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { readFile } from "node:fs/promises"
import { Effect, Option, Redacted } from "effect"

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750: the scheme is case-insensitive).
 * None when the header is missing, names another scheme, or carries no token.
 */
export const fromAuthorization = (header: string | undefined): Option.Option<Redacted.Redacted<string>> => {
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header ?? "")
  return match === null ? Option.none() : Option.some(Redacted.make(match[1]!))
}

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/**
 * Whether the given token is the expected one. Both are hashed first, so the comparison takes the
 * same time whatever the lengths and wherever they differ.
 */
export const matches = (given: Redacted.Redacted<string>, expected: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(Redacted.value(given)), digest(Redacted.value(expected)))

/** A SHA-256 of the token, hex: a key for caches that must not hold the token itself. */
export const fingerprint = (token: Redacted.Redacted<string>): string =>
  digest(Redacted.value(token)).toString("hex")

/**
 * The token in a file, trimmed; None when the file is empty. Read on every call: a Secret mounted
 * as a file changes in place when it is rotated.
 */
export const fromFile = (path: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>, unknown> =>
  Effect.tryPromise({ try: () => readFile(path, "utf8"), catch: (error) => error }).pipe(
    Effect.map((text) => text.trim()),
    Effect.map((token) => (token === "" ? Option.none() : Option.some(Redacted.make(token)))),
  )
