/**
 * A line of an open WATCH decoded on its own: an event with its type and object, or the decode
 * error that ends the request, naming the path and an excerpt of the line.
 */
import { describe, expect, it } from "@effect/vitest"
import { KubeDecodeError } from "../../../src/kube/KubeError.js"
import { decodeLine } from "../../../src/watch/WatchLine.js"

const path = "/api/v1/configmaps"

describe("decodeLine", () => {
  it("decodes the five watch event types", () => {
    for (const type of ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]) {
      expect(decodeLine(path, JSON.stringify({ type, object: { metadata: { name: "a" } } }))).toEqual({
        type,
        object: { metadata: { name: "a" } },
      })
    }
  })

  it.each([
    ["{", "not JSON"],
    ["42", "not an object"],
    ['{"type":"SOMETHING","object":{}}', "no watch event type"],
    ['{"object":{}}', "no watch event type"],
  ])("refuses %s (%s)", (line, why) => {
    const decoded = decodeLine(path, line)
    expect(decoded).toBeInstanceOf(KubeDecodeError)
    expect((decoded as KubeDecodeError).message).toBe(`GET ${path}: not a watch event (${why}): ${line}`)
  })
})
