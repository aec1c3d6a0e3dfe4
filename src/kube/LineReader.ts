/**
 * A streaming response read as batches of lines, decoded as the network delivers them. A watch
 * spends its life here, so this is deliberately small: undici's handler callbacks feed it directly
 * (no Readable stream, no fiber, no Stream pipeline in between), and an idle one holds one timer,
 * the idle limit. A thousand idle watches are a thousand of these.
 */
import { StringDecoder } from "node:string_decoder"
import * as Effect from "effect/Effect"
import type { Dispatcher } from "undici"

export interface LineReader {
  /**
   * The complete lines received since the last call (empty lines skipped), waiting for at least one;
   * `undefined` once the body has ended. Fails when the response fails, or with `"idle"` when nothing
   * arrived within the idle limit.
   */
  readonly next: Effect.Effect<ReadonlyArray<string> | undefined, Error | "idle">
  /** Ends the request now; a read in progress fails. */
  readonly abort: () => void
}

/** What the server answered before its body. */
export interface Head {
  readonly status: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
}

/** Lines waiting beyond this many pause the response until they are read (HTTP/2 flow control then holds the server). */
const HIGH_WATER_LINES = 1_000
/**
 * A busy reader is woken at most once per this many milliseconds. A busy type's server writes one
 * DATA frame per event, and each wake of the reader costs the whole per-read path (the watch step,
 * the store, the queue, the pipeline): at hundreds of events a second, waking per frame costs more
 * than the events. Only a reader woken several times in quick succession is held back, so a list,
 * its closing bookmark or a lone change go through at once; a few milliseconds under load are
 * nothing next to the debounce window.
 */
const WAKE_INTERVAL_MS = 20
/** Wakes within `WAKE_INTERVAL_MS` of each other that make a reader "busy". */
const RAPID_WAKES = 2
/** An error answer's body is kept up to this many characters (it is a Status, usually small). */
const ERROR_BODY_LIMIT = 64 * 1024

/**
 * The reason every client-side abort gives undici. One instance: an `Error` captures a stack when
 * made, and a stop aborts a thousand watches at once.
 */
const ABORTED = new Error("aborted by the client")

class Receiver implements Dispatcher.DispatchHandler {
  head: Head | undefined
  lines: Array<string> = []
  errorBody = ""
  ended = false
  failure: Error | undefined
  idle = false
  private controller: Dispatcher.DispatchController | undefined
  private aborted = false
  private carry = ""
  private readonly decoder = new StringDecoder("utf8")
  private wake: (() => void) | undefined
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly idleMs: number) {}

  /** Calls `f` once something changes (head, lines, end, failure), unless another wait replaced it. */
  waitThen(f: () => void): void {
    this.wake = f
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Cancels the wake that is scheduled, if any. */
  private scheduledWake: (() => void) | undefined
  private lastWake = Number.NEGATIVE_INFINITY
  private rapidWakes = 0

  /** Wakes the reader after the current burst of frames; a busy reader no sooner than `WAKE_INTERVAL_MS` after its last wake. */
  private notifySoon(): void {
    if (this.scheduledWake !== undefined) return
    const sinceLast = performance.now() - this.lastWake
    if (sinceLast >= WAKE_INTERVAL_MS) this.rapidWakes = 0
    if (this.rapidWakes >= RAPID_WAKES) {
      const timer = setTimeout(this.wakeNow, WAKE_INTERVAL_MS - sinceLast)
      this.scheduledWake = () => clearTimeout(timer)
    } else {
      const immediate = setImmediate(this.wakeNow)
      this.scheduledWake = () => clearImmediate(immediate)
    }
  }

  private readonly wakeNow = (): void => {
    this.scheduledWake?.()
    this.scheduledWake = undefined
    const now = performance.now()
    if (now - this.lastWake < WAKE_INTERVAL_MS) this.rapidWakes++
    this.lastWake = now
    this.notify()
  }

  abort(): void {
    this.aborted = true
    this.controller?.abort(ABORTED)
  }

  takeLines(): Array<string> {
    const lines = this.lines
    this.lines = []
    if (this.controller?.paused) this.controller.resume()
    return lines
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.aborted) controller.abort(ABORTED)
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Head["headers"]): void {
    if (status < 200) return // informational
    this.head = { status, headers }
    // The parsed headers are all we read; the raw copy (a Buffer per name and value) would live as
    // long as the watch, a dozen Buffers per watched type.
    controller.rawHeaders = null
    if (this.idleMs > 0 && status < 300) {
      this.timer = setTimeout(() => {
        this.idle = true
        this.abort()
      }, this.idleMs)
      this.timer.unref()
    }
    this.notify()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.head === undefined || this.head.status >= 300) {
      if (this.errorBody.length < ERROR_BODY_LIMIT) this.errorBody += this.decoder.write(chunk)
      return
    }
    this.timer?.refresh()
    const parts = (this.carry + this.decoder.write(chunk)).split("\n")
    this.carry = parts.pop() ?? ""
    for (const line of parts) if (line.trim() !== "") this.lines.push(line)
    if (this.lines.length > HIGH_WATER_LINES) {
      controller.pause()
      this.wakeNow()
    } else if (this.lines.length > 0) this.notifySoon()
  }

  onResponseEnd(): void {
    clearTimeout(this.timer)
    const rest = (this.carry + this.decoder.end()).trim()
    this.carry = ""
    if (rest !== "") {
      if (this.head !== undefined && this.head.status < 300) this.lines.push(rest)
      else this.errorBody += rest
    }
    this.ended = true
    this.wakeNow()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    clearTimeout(this.timer)
    this.failure = error
    this.wakeNow()
  }
}

/**
 * Waits until `ready` holds, re-checking whenever the receiver changes. No canceler: an interrupted
 * wait's callback is spent by the interruption (a later call does nothing) and the next wait
 * replaces it, while a canceler would wrap every wait, so every read, in `onInterrupt`.
 */
const when = (receiver: Receiver, ready: () => boolean): Effect.Effect<void> =>
  Effect.suspend(() =>
    ready()
      ? Effect.void
      : Effect.async<void>((resume) => {
          receiver.waitThen(() => resume(when(receiver, ready)))
        }),
  )

/**
 * Sends the request on `dispatcher` and waits for the answer's head. The request lives as long as
 * the scope. A 2xx answer gives a reader of its lines; any other answer gives its body as text
 * (`errorBody`), read to the end.
 */
export const open = (
  dispatcher: Dispatcher,
  request: Dispatcher.DispatchOptions,
  idleMs: number,
): Effect.Effect<
  { readonly head: Head; readonly reader: LineReader; readonly errorBody: Effect.Effect<string> },
  Error
> =>
  Effect.suspend(() => {
    const receiver = new Receiver(idleMs)
    dispatcher.dispatch(request, receiver)
    const next: Effect.Effect<ReadonlyArray<string> | undefined, Error | "idle"> = Effect.zipRight(
      when(receiver, () => receiver.lines.length > 0 || receiver.ended || receiver.failure !== undefined),
      Effect.suspend((): Effect.Effect<ReadonlyArray<string> | undefined, Error | "idle"> => {
        if (receiver.lines.length > 0) return Effect.succeed(receiver.takeLines())
        if (receiver.idle) return Effect.fail("idle" as const)
        if (receiver.failure !== undefined) return Effect.fail(receiver.failure)
        return Effect.succeed(undefined)
      }),
    )
    return when(receiver, () => receiver.head !== undefined || receiver.failure !== undefined).pipe(
      Effect.zipRight(
        Effect.suspend(() =>
          receiver.head === undefined
            ? Effect.fail(receiver.failure ?? new Error("no answer"))
            : Effect.succeed({
                head: receiver.head,
                reader: { next, abort: () => receiver.abort() },
                errorBody: Effect.map(
                  when(receiver, () => receiver.ended || receiver.failure !== undefined),
                  () => receiver.errorBody,
                ),
              }),
        ),
      ),
      Effect.onInterrupt(() => Effect.sync(() => receiver.abort())),
    )
  })
