/** Which objects are synced: namespaces by name or glob, cluster-scoped objects, the opt-out annotation. */
import { describe, expect, it } from "@effect/vitest"
import { patternMatcher } from "../../../src/record/KeyFilter.js"
import * as ObjectFilter from "../../../src/watch/ObjectFilter.js"

const inNamespace = (namespace?: string, annotations?: Record<string, string>) => ({
  name: "x",
  ...(namespace === undefined ? {} : { namespace }),
  ...(annotations === undefined ? {} : { annotations }),
})

describe("ObjectFilter", () => {
  it("namespace globs match any run of characters, names match exactly", () => {
    const matches = patternMatcher(["dev-*", "prod", "*-tmp", "a*b*c"])
    expect(["dev-", "dev-42", "prod", "x-tmp", "abc", "a-b-c"].filter(matches)).toHaveLength(6)
    expect(["dev", "prod2", "xprod", "tmp", "ab", "a.b"].filter(matches)).toEqual([])
    // Regex characters in a pattern are literal.
    expect(patternMatcher(["a.b"])("axb")).toBe(false)
  })

  it("an include list admits only its namespaces; an exclude list drops its own; cluster-scoped objects pass", () => {
    const filter = ObjectFilter.make({
      watchNamespaces: ["team-*", "shared"],
      excludeNamespaces: ["team-tmp*"],
    })
    expect(filter.admits(inNamespace("team-a"))).toBe(true)
    expect(filter.admits(inNamespace("shared"))).toBe(true)
    expect(filter.admits(inNamespace("team-tmp-1"))).toBe(false)
    expect(filter.admits(inNamespace("default"))).toBe(false)
    expect(filter.admits(inNamespace(undefined))).toBe(true)
    expect(filter.onlyNamespace).toBeUndefined()
  })

  it('the opt-out annotation drops an object, cluster-scoped or not; only the value "true" counts', () => {
    const filter = ObjectFilter.all
    expect(filter.admits(inNamespace("a", { "vectordb-sync.io/exclude": "true" }))).toBe(false)
    expect(filter.admits(inNamespace(undefined, { "vectordb-sync.io/exclude": "true" }))).toBe(false)
    expect(filter.admits(inNamespace("a", { "vectordb-sync.io/exclude": "false" }))).toBe(true)
    expect(filter.admits({ name: "x", namespace: "a", annotations: null })).toBe(true)
  })

  it("one literal namespace, not excluded, is the one a watch can be scoped to", () => {
    expect(ObjectFilter.make({ watchNamespaces: ["apps"], excludeNamespaces: [] }).onlyNamespace).toBe("apps")
    expect(
      ObjectFilter.make({ watchNamespaces: ["apps-*"], excludeNamespaces: [] }).onlyNamespace,
    ).toBeUndefined()
    expect(
      ObjectFilter.make({ watchNamespaces: ["a", "b"], excludeNamespaces: [] }).onlyNamespace,
    ).toBeUndefined()
    expect(
      ObjectFilter.make({ watchNamespaces: ["a"], excludeNamespaces: ["a*"] }).onlyNamespace,
    ).toBeUndefined()
  })
})
