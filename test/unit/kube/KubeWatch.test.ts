import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { ListPage, watchQuery } from "../../../src/kube/KubeWatch.js"

describe("watchQuery", () => {
  it.effect("asks for a watch with bookmarks by default and leaves absent parameters out", () =>
    Effect.sync(() => {
      expect(watchQuery({})).toEqual({ watch: "1", allowWatchBookmarks: "true" })
      expect(watchQuery({ resourceVersion: "42", timeoutSeconds: 290, allowWatchBookmarks: false })).toEqual({
        watch: "1",
        resourceVersion: "42",
        timeoutSeconds: "290",
      })
    }),
  )
})

describe("ListPage", () => {
  it.effect("decodes Go's null items as an empty list and keeps the continue token", () =>
    Effect.gen(function* () {
      const page = yield* Schema.decodeUnknown(ListPage)({
        kind: "PartialObjectMetadataList",
        metadata: { resourceVersion: "7", continue: "abc" },
        items: null,
      })
      expect(page.items).toEqual([])
      expect(page.metadata).toEqual({ resourceVersion: "7", continue: "abc" })
    }),
  )
})
