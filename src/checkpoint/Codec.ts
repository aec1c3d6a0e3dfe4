/**
 * The checkpoint's bytes: the ids the receiver may hold, sorted, newline-separated and gzip'd, split
 * into parts of at most `partBytes` compressed bytes each. Every part is a sorted range of ids
 * compressed on its own, so a part can be read without the others: a crash between the writes of two
 * parts leaves some parts old and some new, and their union still names every id either write knew.
 *
 * Pure: no I/O, no clock. `Objects.ts` puts the parts into ConfigMaps.
 */
import { gunzipSync, gzipSync } from "node:zlib"
import { Data, Either } from "effect"

/** The checkpoint read back is damaged or not ours: the controller carries on without it. */
export class CheckpointCorrupt extends Data.TaggedError("CheckpointCorrupt")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Sorted (by UTF-16 code units, as `Array.prototype.sort`), duplicates removed. */
export const sortedDistinct = (ids: Iterable<string>): ReadonlyArray<string> =>
  // A set is distinct already: copying a hundred thousand ids into another costs tens of ms.
  (ids instanceof Set ? [...ids] : [...new Set(ids)]).sort()

const gzip = (ids: ReadonlyArray<string>): Uint8Array => gzipSync(Buffer.from(ids.join("\n"), "utf8"))

/** Splits `ids` into `count` ranges of (almost) equal length, in order. */
const ranges = (ids: ReadonlyArray<string>, count: number): Array<ReadonlyArray<string>> =>
  Array.from({ length: count }, (_, i) =>
    ids.slice(Math.floor((i * ids.length) / count), Math.floor(((i + 1) * ids.length) / count)),
  )

/**
 * The parts of a checkpoint of `ids` (at least one, also when there are no ids). Each is at most
 * `partBytes` long unless a single id compresses to more than that (then that id is a part alone).
 */
export const encode = (ids: Iterable<string>, partBytes: number): ReadonlyArray<Uint8Array> => {
  const sorted = sortedDistinct(ids)
  const whole = gzip(sorted)
  if (whole.length <= partBytes || sorted.length <= 1) return [whole]
  // Sorted ids compress about evenly, so equal-count ranges have about equal sizes; a range that
  // came out too large makes the next try use proportionally more parts.
  let count = Math.ceil(whole.length / partBytes)
  for (;;) {
    const parts = ranges(sorted, Math.min(count, sorted.length)).map(gzip)
    const largest = Math.max(...parts.map((part) => part.length))
    if (largest <= partBytes || count >= sorted.length) return parts
    count = Math.max(count + 1, Math.ceil((count * largest) / partBytes))
  }
}

/** An id as the controller makes them: `namespace/apiVersion/Kind/name` (apiVersion may hold a `/`). */
const isId = (id: string): boolean => {
  const segments = id.split("/")
  return segments.length >= 4 && segments.length <= 5 && segments.every((segment) => segment !== "")
}

/** The ids of every part together, sorted and distinct; a part that does not decode fails it all. */
export const decode = (
  parts: ReadonlyArray<Uint8Array>,
): Either.Either<ReadonlyArray<string>, CheckpointCorrupt> => {
  const ids: Array<string> = []
  for (const [index, part] of parts.entries()) {
    let text: string
    try {
      text = gunzipSync(part).toString("utf8")
    } catch (cause) {
      return Either.left(
        new CheckpointCorrupt({ message: `part ${index} is not gzip data (${String(cause)})`, cause }),
      )
    }
    if (text === "") continue
    for (const id of text.split("\n")) {
      if (!isId(id)) {
        return Either.left(
          new CheckpointCorrupt({
            message: `part ${index} holds ${JSON.stringify(id.slice(0, 80))}, not an id`,
          }),
        )
      }
      ids.push(id)
    }
  }
  return Either.right(sortedDistinct(ids))
}

/** Compressed size of all parts together. */
export const sizeOf = (parts: ReadonlyArray<Uint8Array>): number =>
  parts.reduce((total, part) => total + part.length, 0)
