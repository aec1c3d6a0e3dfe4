/**
 * The line reader against undici's handler protocol, driven by hand: bytes split anywhere (inside a
 * line, inside a UTF-8 character) come out as whole lines, in order, batch by batch.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { Dispatcher } from "undici"
import * as LineReader from "../../../src/kube/LineReader.js"

/** A dispatcher that answers with `status` at once and then lets the test play the server. */
const manual = (status: number) => {
  let handler: Dispatcher.DispatchHandler | undefined
  const state = { paused: false, aborted: false }
  const controller: Dispatcher.DispatchController = {
    get aborted() {
      return state.aborted
    },
    get paused() {
      return state.paused
    },
    get reason() {
      return null
    },
    abort: () => {
      state.aborted = true
    },
    pause: () => {
      state.paused = true
    },
    resume: () => {
      state.paused = false
    },
  }
  const dispatcher = {
    dispatch: (_options: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler) => {
      handler = h
      h.onRequestStart?.(controller, {})
      h.onResponseStart?.(controller, status, {}, "")
      return true
    },
  } as unknown as Dispatcher
  return {
    dispatcher,
    state,
    data: (bytes: Buffer | string) =>
      handler!.onResponseData?.(controller, typeof bytes === "string" ? Buffer.from(bytes) : bytes),
    end: () => handler!.onResponseEnd?.(controller, {}),
    fail: (error: Error) => handler!.onResponseError?.(controller, error),
  }
}

const request: Dispatcher.DispatchOptions = { origin: "https://k", path: "/", method: "GET" }

describe("LineReader", () => {
  it.effect("joins lines split across reads, inside a multi-byte character too, and skips empty ones", () =>
    Effect.gen(function* () {
      const server = manual(200)
      const opened = yield* LineReader.open(server.dispatcher, request, 0)
      expect(opened.head.status).toBe(200)
      const euro = Buffer.from("€") // three bytes
      server.data('{"a":1}\n{"b":')
      expect(yield* opened.reader.next).toEqual(['{"a":1}'])
      server.data(Buffer.concat([Buffer.from('"x'), euro.subarray(0, 1)]))
      server.data(Buffer.concat([euro.subarray(1), Buffer.from('"}\n\n  \n{"c":3}\n')]))
      expect(yield* opened.reader.next).toEqual(['{"b":"x€"}', '{"c":3}'])
      server.data('{"tail":true}')
      server.end()
      expect(yield* opened.reader.next).toEqual(['{"tail":true}'])
      expect(yield* opened.reader.next).toBeUndefined()
    }),
  )

  it.effect("waits for the next read, and fails with the response's error", () =>
    Effect.gen(function* () {
      const server = manual(200)
      const opened = yield* LineReader.open(server.dispatcher, request, 0)
      setTimeout(() => server.data("late\n"), 5)
      expect(yield* opened.reader.next).toEqual(["late"])
      setTimeout(() => server.fail(new Error("reset")), 5)
      const failed = yield* Effect.either(opened.reader.next)
      expect(Either.isLeft(failed) && failed.left instanceof Error && failed.left.message).toBe("reset")
    }),
  )

  it.effect("pauses the response while too many lines wait, resumes once they are read", () =>
    Effect.gen(function* () {
      const server = manual(200)
      const opened = yield* LineReader.open(server.dispatcher, request, 0)
      server.data("x\n".repeat(1_001))
      expect(server.state.paused).toBe(true)
      expect((yield* opened.reader.next)?.length).toBe(1_001)
      expect(server.state.paused).toBe(false)
    }),
  )

  it.effect("an error answer gives its body as text, not lines", () =>
    Effect.gen(function* () {
      const server = manual(403)
      const opened = yield* LineReader.open(server.dispatcher, request, 0)
      server.data('{"kind":"Status",')
      server.data('"code":403}')
      server.end()
      expect(opened.head.status).toBe(403)
      expect(yield* opened.errorBody).toBe('{"kind":"Status","code":403}')
    }),
  )

  it.effect("aborting ends the request", () =>
    Effect.gen(function* () {
      const server = manual(200)
      const opened = yield* LineReader.open(server.dispatcher, request, 0)
      opened.reader.abort()
      expect(server.state.aborted).toBe(true)
    }),
  )
  it.effect("a reader woken in quick succession is held back, so that one read takes many lines", () =>
    Effect.gen(function* () {
      const server = manual(200)
      const opened = yield* LineReader.open(server.dispatcher, request, 0)
      // A busy watch: one line per millisecond, each its own network read.
      let sent = 0
      const writer = setInterval(() => {
        server.data(`{"n":${sent++}}\n`)
        if (sent === 100) {
          clearInterval(writer)
          server.end()
        }
      }, 1)
      let reads = 0
      let lines = 0
      for (;;) {
        const batch = yield* opened.reader.next
        if (batch === undefined) break
        reads++
        lines += batch.length
      }
      expect(lines).toBe(100)
      // Woken per network read, it would read about 100 times.
      expect(reads).toBeLessThan(30)
    }),
  )
})
