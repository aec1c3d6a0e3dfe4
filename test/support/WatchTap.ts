/**
 * What a controller behind a `RecordingProxy` was told by its watches, read from the bytes the proxy
 * forwarded (not from the controller's logs), and how far it has processed that stream, read from
 * its `/metrics`. Together they say "the controller has taken in every event up to this one".
 *
 * The proxy's order is the controller's order: a type's watch requests follow one another, and its
 * events are read in the order they arrive. Every ADDED, MODIFIED or DELETED event of a watched
 * object is one change for `vectordb_sync_watch_events_total` (the streaming initial list included),
 * so the k-th event of a type has been processed once that counter reaches k.
 */
import { parsePrometheusText, sampleValue } from "./prometheus.js"
import type { RecordingProxy } from "./RecordingProxy.js"

export interface TappedEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly namespace: string | undefined
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
}

interface RawEvent {
  readonly type?: string
  readonly object?: {
    readonly metadata?: {
      readonly namespace?: string
      readonly name?: string
      readonly labels?: Record<string, string>
    }
  }
}

const isWatch = (path: string, collection: string): boolean => {
  const url = new URL(path, "http://proxy")
  const watch = url.searchParams.get("watch")
  return url.pathname === collection && (watch === "true" || watch === "1")
}

/**
 * Every object event the proxy forwarded on watches of `collection` (e.g. `/api/v1/configmaps`),
 * in order; bookmarks and a last line not yet complete are left out.
 */
export const watchEvents = (proxy: RecordingProxy, collection: string): Array<TappedEvent> =>
  proxy.requests.flatMap((request, i) => {
    if (!isWatch(request.path, collection)) return []
    const lines = (proxy.responses[i] ?? "").split("\n").slice(0, -1)
    return lines.flatMap((line): Array<TappedEvent> => {
      const event = JSON.parse(line) as RawEvent
      if (event.type !== "ADDED" && event.type !== "MODIFIED" && event.type !== "DELETED") return []
      const meta = event.object?.metadata ?? {}
      return [
        { type: event.type, namespace: meta.namespace, name: meta.name ?? "", labels: meta.labels ?? {} },
      ]
    })
  })

/** How many changes of `type` (e.g. `configmaps`) the controller at `apiUrl` has taken in. */
export const changesTakenIn = async (apiUrl: string, type: string): Promise<number> => {
  const samples = parsePrometheusText(await (await fetch(`${apiUrl}/metrics`)).text())
  return sampleValue(samples, "vectordb_sync_watch_events_total", { type })
}
