import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { toInstanceRecord } from "../../../src/record/Instance.js"
import {
  DEFAULT_RECORD_KEYS,
  fromPatterns,
  recordKeys,
  withoutToolAnnotations,
} from "../../../src/record/KeyFilter.js"

const kept = (patterns: ReadonlyArray<string>, keys: ReadonlyArray<string>) =>
  keys.filter(fromPatterns(patterns))

describe("fromPatterns", () => {
  it("`description` alone keeps description and */description, nothing else", () => {
    expect(
      kept(
        ["description"],
        [
          "description",
          "team.io/description",
          "kubernetes.io/description",
          "other",
          "descriptions",
          "team.io/description-long",
          "my-description",
          "Description",
        ],
      ),
    ).toEqual(["description", "team.io/description", "kubernetes.io/description"])
  })

  it("inside a list `description` is just that key", () => {
    expect(kept(["description", "owner"], ["description", "team.io/description", "owner"])).toEqual([
      "description",
      "owner",
    ])
  })

  it("exact keys match whole keys, case-sensitively", () => {
    expect(
      kept(["app", "team.io/owner"], ["app", "App", "apps", "x/app", "team.io/owner", "team.io/owners"]),
    ).toEqual(["app", "team.io/owner"])
  })

  it("`*` matches any characters but `/`, including none", () => {
    const keys = ["app", "team.io/owner", "team.io/", "a.team.io/owner", "team.io/x/y", "owner"]
    expect(kept(["*"], keys)).toEqual(["app", "owner"])
    expect(kept(["*/*"], keys)).toEqual(["team.io/owner", "team.io/", "a.team.io/owner"])
    expect(kept(["*,*/*".split(",")].flat(), keys)).toEqual(keys.filter((k) => k !== "team.io/x/y"))
    expect(kept(["team.io/*"], keys)).toEqual(["team.io/owner", "team.io/"])
    expect(kept(["*.team.io/*"], keys)).toEqual(["a.team.io/owner"])
    expect(kept(["*/own*r"], ["t/owner", "t/ownr", "t/own/r", "owner"])).toEqual(["t/owner", "t/ownr"])
  })

  it("regular-expression characters in a pattern are literal", () => {
    expect(kept(["a.b*"], ["a.bc", "axbc"])).toEqual(["a.bc"])
    expect(kept(["a.b"], ["a.b", "axb"])).toEqual(["a.b"])
  })

  it("no pattern keeps no key", () => {
    expect(kept([], ["a", "b/c"])).toEqual([])
  })
})

describe("recordKeys", () => {
  const metadata = {
    name: "x",
    namespace: "n",
    labels: { app: "web", "app.kubernetes.io/name": "web", tier: "front" },
    annotations: {
      description: "d",
      "team.io/description": "t",
      other: "o",
      "kubectl.kubernetes.io/last-applied-configuration": "{}",
    },
  }
  const kind = { group: "apps", version: "v1", kind: "Deployment" }

  it("unset: every label, annotations without the tools' bookkeeping (the contract's default)", () => {
    const keys = recordKeys({ labelKeys: Option.none(), annotationKeys: Option.none() })
    const record = toInstanceRecord(kind, metadata, keys)!
    expect(record.labels).toEqual(metadata.labels)
    expect(record.annotations).toEqual({ description: "d", "team.io/description": "t", other: "o" })
    expect(toInstanceRecord(kind, metadata)).toEqual(record)
    expect(DEFAULT_RECORD_KEYS.annotations).toBe(withoutToolAnnotations)
  })

  it("patterns replace the default of each map, the tools' prefixes included", () => {
    const keys = recordKeys({
      labelKeys: Option.some(["app.kubernetes.io/*"]),
      annotationKeys: Option.some(["description"]),
    })
    const record = toInstanceRecord(kind, metadata, keys)!
    expect(record.labels).toEqual({ "app.kubernetes.io/name": "web" })
    expect(record.annotations).toEqual({ description: "d", "team.io/description": "t" })
    const all = recordKeys({ labelKeys: Option.none(), annotationKeys: Option.some(["*", "*/*"]) })
    expect(Object.keys(toInstanceRecord(kind, metadata, all)!.annotations)).toHaveLength(4)
  })
})
