/**
 * The last check before a request to a receiver leaves the process: a synchronous predicate that
 * the receivers' HTTP client consults at the moment undici writes the request on its connection,
 * after any queueing for a free connection and after connecting.
 *
 * The sender checks leadership before each batch too, but between that check and the write lie
 * the encoding, a token file read, a wait for a connection: a process frozen there (SIGSTOP, a
 * paused VM, a long GC) would send on waking up, after a standby took over. Checked here, what
 * remains is the synchronous step from this call to the socket's write. Only a receiver that
 * checked a fencing token could close that too.
 */
import { Context, Data } from "effect"
import type { Dispatcher } from "undici"

/** May a request be written now? Provided by the leader elector; absent, every request may. */
export class WriteFence extends Context.Tag("k8s-vectordb-sync/WriteFence")<WriteFence, () => boolean>() {}

/** A request stopped by the fence before any of it was written. */
export class WriteFenceClosed extends Data.TaggedError("WriteFenceClosed")<{}> {
  override get message(): string {
    return "not written: this process no longer holds the lease"
  }
}

/**
 * Forwards everything to `handler`, except that the start of the request (undici calls it just
 * before writing the request's first byte) first asks `mayWrite`, and aborts the request when it
 * says no: `handler` then sees only the error.
 */
class FencedHandler implements Dispatcher.DispatchHandler {
  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly mayWrite: () => boolean,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    if (this.mayWrite()) this.handler.onRequestStart?.(controller, context)
    else controller.abort(new WriteFenceClosed())
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Dispatcher.DispatchHandler["onRequestUpgrade"]>>): void {
    this.handler.onRequestUpgrade?.(...args)
  }

  onResponseStart(...args: Parameters<NonNullable<Dispatcher.DispatchHandler["onResponseStart"]>>): void {
    this.handler.onResponseStart?.(...args)
  }

  onResponseData(...args: Parameters<NonNullable<Dispatcher.DispatchHandler["onResponseData"]>>): void {
    this.handler.onResponseData?.(...args)
  }

  onResponseEnd(...args: Parameters<NonNullable<Dispatcher.DispatchHandler["onResponseEnd"]>>): void {
    this.handler.onResponseEnd?.(...args)
  }

  onResponseError(...args: Parameters<NonNullable<Dispatcher.DispatchHandler["onResponseError"]>>): void {
    this.handler.onResponseError?.(...args)
  }
}

/** `dispatcher` with every request it writes passing `mayWrite` first. */
export const fence = (dispatcher: Dispatcher, mayWrite: () => boolean): Dispatcher =>
  dispatcher.compose(
    (dispatch) => (options, handler) => dispatch(options, new FencedHandler(handler, mayWrite)),
  )
