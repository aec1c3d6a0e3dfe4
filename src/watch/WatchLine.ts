/**
 * Reading an open WATCH: each line of its body decoded into a watch event, or the error that ends
 * the request (a line that is not one, a read that broke off). What an event means is the
 * `Watcher`'s business.
 */
import { KubeDecodeError, type KubeError, KubeTransportError } from "../kube/KubeError.js"
import { excerpt } from "../kube/KubeStatus.js"

const WATCH_EVENT_TYPES = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"])

/** One decoded watch line, or why it is not one. */
const parseLine = (line: string): WatchLine | string => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return "not JSON"
  }
  if (typeof value !== "object" || value === null) return "not an object"
  const { type, object } = value as { readonly type?: unknown; readonly object?: unknown }
  return typeof type === "string" && WATCH_EVENT_TYPES.has(type) ? { type, object } : "no watch event type"
}

/** One decoded line of a watch body: an event's type and its object, not yet read. */
export interface WatchLine {
  readonly type: string
  readonly object: unknown
}

/** One line of an open WATCH of `path`: its event, or the error that ends the request. */
export const decodeLine = (path: string, line: string): WatchLine | KubeDecodeError => {
  const event = parseLine(line)
  return typeof event !== "string"
    ? event
    : new KubeDecodeError({
        method: "GET",
        path,
        message: `GET ${path}: not a watch event (${event}): ${excerpt(line, 200)}`,
      })
}

/** A read of the open WATCH broke off (not a clean end, not an abort we asked for). */
export const readError = (path: string, cause: Error): KubeError =>
  new KubeTransportError({
    method: "GET",
    path,
    reason: "ConnectionReset",
    message: `GET ${path}: the watch broke off: ${cause.message}`,
    cause,
  })
