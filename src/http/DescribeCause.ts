/**
 * What went wrong on the wire, read from an error's cause chain. A platform error says only
 * "Transport error (POST url)" and undici's says "fetch failed"; the links below them carry the
 * codes (ECONNREFUSED, UND_ERR_SOCKET, ERR_TLS_CERT_ALTNAME_INVALID) an operator acts on.
 */

/** How many links of a chain are described: past a few, they repeat the same failure. */
const MAX_LINKS = 4

/** A Node.js or undici error code (`ECONNRESET`, `UND_ERR_CLOSED`), if the value carries one. */
export const codeOf = (u: unknown): string | undefined =>
  typeof u === "object" &&
  u !== null &&
  "code" in u &&
  (typeof u.code === "string" || typeof u.code === "number")
    ? String(u.code)
    : undefined

/**
 * `cause` and the causes under it, each as `CODE: message` (or only the message when it has no
 * code), joined with `: `. A value that is not an `Error` is described as itself.
 */
export const describeCause = (cause: unknown): string => {
  const links: Array<string> = []
  let link = cause
  for (let depth = 0; depth < MAX_LINKS && link instanceof Error; depth++) {
    const code = codeOf(link)
    links.push(code === undefined ? link.message : link.message === "" ? code : `${code}: ${link.message}`)
    link = link.cause
  }
  return links.length > 0 ? links.join(": ") : String(cause)
}

/** An error's own message followed by what its cause chain says, when it has an `Error` cause. */
export const describeFailure = (error: { readonly message: string; readonly cause?: unknown }): string =>
  error.cause instanceof Error ? `${error.message}: ${describeCause(error.cause)}` : error.message
