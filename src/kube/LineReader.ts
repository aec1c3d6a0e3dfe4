/**
 * A streaming response body read as lines, pulled one network read at a time. A watch spends its
 * life waiting here, so this is deliberately small: no fiber, no Stream pipeline, one timer (the
 * idle limit) per open body. A thousand idle watches are a thousand of these.
 */
import type { Readable } from "node:stream"
import { StringDecoder } from "node:string_decoder"
import * as Effect from "effect/Effect"

export interface LineReader {
  /**
   * The complete lines of the next read (empty lines skipped), or `undefined` once the body has
   * ended. Fails when the body fails, or with `"idle"` when nothing arrived within the idle limit.
   */
  readonly next: Effect.Effect<ReadonlyArray<string> | undefined, Error | "idle">
  /** Ends the request now; the read in progress, if any, fails. */
  readonly abort: () => void
}

/**
 * `abort` ends the request (it is called on idleness); the caller still owns the request's scope.
 * `idleMs` 0: no idle limit.
 */
export const make = (body: Readable, abort: () => void, idleMs: number): LineReader => {
  const decoder = new StringDecoder("utf8")
  let carry = ""
  let ended = false
  let failure: Error | undefined
  let idle = false
  let closed = false
  // Errors may come while nobody is reading; keep them for the next read instead of crashing.
  body.on("error", (error) => {
    failure ??= error
  })
  body.on("end", () => {
    ended = true
  })
  const timer =
    idleMs > 0
      ? setTimeout(() => {
          idle = true
          abort()
        }, idleMs)
      : undefined
  timer?.unref()
  body.once("close", () => {
    closed = true
    clearTimeout(timer)
  })

  const split = (chunk: Buffer | string): ReadonlyArray<string> => {
    const text = carry + (typeof chunk === "string" ? chunk : decoder.write(chunk))
    const parts = text.split("\n")
    carry = parts.pop() ?? ""
    return parts.filter((line) => line.trim() !== "")
  }

  const read = (): Effect.Effect<ReadonlyArray<string> | undefined, Error | "idle"> =>
    Effect.suspend(() => {
      if (idle) return Effect.fail("idle" as const)
      for (let chunk = body.read() as Buffer | null; chunk !== null; chunk = body.read() as Buffer | null) {
        timer?.refresh()
        const lines = split(chunk)
        if (lines.length > 0) return Effect.succeed(lines)
      }
      if (failure !== undefined) return Effect.fail(failure)
      if (ended || body.readableEnded) {
        const rest = (carry + decoder.end()).trim()
        carry = ""
        clearTimeout(timer)
        return Effect.succeed(rest === "" ? undefined : [rest])
      }
      if (closed) return Effect.fail(new Error("the response body closed before its end"))
      return Effect.async<void>((resume) => {
        const wake = () => {
          body.off("readable", wake)
          body.off("end", wake)
          body.off("error", wake)
          body.off("close", wake)
          resume(Effect.void)
        }
        body.on("readable", wake)
        body.on("end", wake)
        body.on("error", wake)
        body.on("close", wake)
        return Effect.sync(() => {
          body.off("readable", wake)
          body.off("end", wake)
          body.off("error", wake)
          body.off("close", wake)
        })
      }).pipe(Effect.zipRight(read()))
    })

  return { next: read(), abort }
}
