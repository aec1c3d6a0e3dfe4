/**
 * Discovery parsing and version selection on real answers of a kube-apiserver v1.36.3 (the test
 * harness), captured into fixtures/: the aggregated `/api` and `/apis`, the legacy `/api`, `/apis`
 * and every group-version's APIResourceList. The cluster held two CRDs of group
 * fixture.example.com (widgets: v1 storage + v2 served; gadgets: v1 only, cluster-scoped) and an
 * APIService v1beta1.metrics.fixture.example.com whose backing service does not exist (Stale in
 * aggregated discovery, 503 in the legacy form).
 */

import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import {
  APIGroupList,
  APIResourceList as APIResourceListSchema,
  APIVersions,
  CoreDiscoveryDocument,
  GroupsDiscoveryDocument,
} from "../../../src/watch/DiscoveryDocument.js"
import {
  type DiscoveryResult,
  failedGroups,
  fromAggregated,
  fromLegacy,
  legacyGroups,
  resolveTypes,
  type ServedResource,
  type WatchedType,
} from "../../../src/watch/DiscoveryResult.js"
import { selectTypes } from "../../../src/watch/TypeFilter.js"

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), "utf8"))

const aggregatedCore = Schema.decodeUnknownSync(CoreDiscoveryDocument)(fixture("aggregated-api"))
const aggregatedGroupsDoc = Schema.decodeUnknownSync(GroupsDiscoveryDocument)(fixture("aggregated-apis"))
const legacyCore = Schema.decodeUnknownSync(APIVersions)(fixture("legacy-api"))
const legacyGroupList = Schema.decodeUnknownSync(APIGroupList)(fixture("legacy-apis"))

/** Each group-version's answer: an APIResourceList, or the failed request's status and body. */
const legacyAnswers = new Map(
  Object.entries(fixture("legacy-resourcelists") as Record<string, unknown>).map(([gv, answer]) => {
    const failed = answer as { status?: number; body?: string }
    return [
      gv,
      failed.status === undefined
        ? Either.right(Schema.decodeUnknownSync(APIResourceListSchema)(answer))
        : Either.left(`HTTP ${failed.status}: ${String(failed.body).trim()}`),
    ] as const
  }),
)

const aggregated = (): Pick<DiscoveryResult, "types" | "failures"> => {
  if (aggregatedCore.kind !== "APIGroupDiscoveryList" || aggregatedGroupsDoc.kind !== "APIGroupDiscoveryList")
    throw new Error("fixtures are not aggregated discovery")
  return fromAggregated(aggregatedCore, aggregatedGroupsDoc)
}
const legacy = () => fromLegacy(legacyGroups(legacyCore, legacyGroupList), legacyAnswers)

const byKey = (types: ReadonlyArray<WatchedType>, key: string) => types.filter((t) => t.key === key)

const forms = [
  ["aggregated", aggregated],
  ["legacy", legacy],
] as const

describe("the fixtures are what the 1.36 server answers", () => {
  it("aggregated discovery v2 for both /api and /apis, with freshness per version", () => {
    expect(aggregatedCore.kind).toBe("APIGroupDiscoveryList")
    expect(aggregatedGroupsDoc.kind).toBe("APIGroupDiscoveryList")
    if (aggregatedGroupsDoc.kind !== "APIGroupDiscoveryList") return
    expect(aggregatedGroupsDoc.apiVersion).toBe("apidiscovery.k8s.io/v2")
    const stale = aggregatedGroupsDoc.items.find((g) => g.metadata.name === "metrics.fixture.example.com")
    expect(stale?.versions).toEqual([{ version: "v1beta1", freshness: "Stale", resources: [] }])
  })
})

describe.each(forms)("discovery from the %s form", (_name, discovered) => {
  const { types, failures } = discovered()

  it("lists core types at v1 with their scope", () => {
    expect(byKey(types, "configmaps")).toEqual([
      {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        key: "configmaps",
      },
    ])
    expect(byKey(types, "namespaces")).toEqual([
      {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        key: "namespaces",
      },
    ])
    expect(byKey(types, "deployments.apps")).toEqual([
      {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        key: "deployments.apps",
      },
    ])
  })

  it("takes a type served at two versions once, at the group's preferred version", () => {
    expect(byKey(types, "horizontalpodautoscalers.autoscaling")).toEqual([
      {
        group: "autoscaling",
        version: "v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        namespaced: true,
        key: "horizontalpodautoscalers.autoscaling",
      },
    ])
    expect(byKey(types, "widgets.fixture.example.com").map((t) => t.version)).toEqual(["v2"])
  })

  it("takes the most preferred version that serves a type the preferred version does not", () => {
    expect(byKey(types, "gadgets.fixture.example.com")).toEqual([
      {
        group: "fixture.example.com",
        version: "v1",
        kind: "Gadget",
        plural: "gadgets",
        namespaced: false,
        key: "gadgets.fixture.example.com",
      },
    ])
  })

  it("never lists a group/resource twice, and keeps the same plural in other groups apart", () => {
    const keys = types.map((t) => t.key)
    expect(new Set(keys).size).toBe(keys.length)
    expect(new Set(types.map((t) => `${t.group}/${t.plural}`)).size).toBe(types.length)
    expect(keys).toEqual([...keys].sort())
    expect(types.filter((t) => t.plural === "events").map((t) => [t.group, t.version, t.kind])).toEqual([
      ["", "v1", "Event"],
      ["events.k8s.io", "v1", "Event"],
    ])
  })

  it("skips subresources and types without list and watch", () => {
    expect(types.some((t) => t.plural.includes("/"))).toBe(false)
    expect(byKey(types, "pods")).toHaveLength(1)
    for (const absent of [
      "bindings", // create only
      "componentstatuses", // get, list: no watch
      "tokenreviews.authentication.k8s.io", // create only
      "selfsubjectaccessreviews.authorization.k8s.io",
    ]) {
      expect(byKey(types, absent)).toEqual([])
    }
  })

  it("reports the unreachable aggregated API as a failure of its group-version and lists the rest", () => {
    expect(failures.map((f) => f.groupVersion)).toEqual(["metrics.fixture.example.com/v1beta1"])
    expect(failures[0]?.error).not.toBe("")
    expect(types.some((t) => t.group === "metrics.fixture.example.com")).toBe(false)
    expect(failedGroups({ failures })).toEqual(new Set(["metrics.fixture.example.com"]))
    expect(types.length).toBeGreaterThan(40)
  })
})

describe("aggregated and legacy forms", () => {
  it("give the same types", () => {
    expect(legacy().types).toEqual(aggregated().types)
  })

  it("legacy groups ask the preferred version first", () => {
    const groups = legacyGroups(legacyCore, legacyGroupList)
    expect(groups[0]).toEqual({ group: "", versions: ["v1"] })
    expect(groups.find((g) => g.group === "autoscaling")?.versions).toEqual(["v2", "v1"])
    expect(groups.find((g) => g.group === "fixture.example.com")?.versions).toEqual(["v2", "v1"])
  })

  it("a group-version without an answer is a failure", () => {
    const answers = new Map(legacyAnswers)
    answers.delete("apps/v1")
    const { types, failures } = fromLegacy(legacyGroups(legacyCore, legacyGroupList), answers)
    expect(failures.map((f) => f.groupVersion)).toContain("apps/v1")
    expect(types.some((t) => t.group === "apps")).toBe(false)
    expect(byKey(types, "configmaps")).toHaveLength(1)
  })

  it("the 503 of the legacy form is the failure's message", () => {
    expect(legacy().failures).toEqual([
      { groupVersion: "metrics.fixture.example.com/v1beta1", error: "HTTP 503: service unavailable" },
    ])
  })
})

describe("resolveTypes when a version fails", () => {
  const widgets: ServedResource = {
    plural: "widgets",
    kind: "Widget",
    namespaced: true,
    verbs: ["list", "watch"],
  }
  const gadgets: ServedResource = {
    plural: "gadgets",
    kind: "Gadget",
    namespaced: false,
    verbs: ["list", "watch"],
  }

  it("withholds types found only below a failed version: they might belong to it", () => {
    const { types, failures } = resolveTypes([
      {
        group: "example.com",
        versions: [
          { _tag: "Served", version: "v3", resources: [gadgets] },
          { _tag: "Failed", version: "v2", error: "HTTP 503" },
          { _tag: "Served", version: "v1", resources: [widgets, gadgets] },
        ],
      },
    ])
    expect(types.map((t) => `${t.key}@${t.version}`)).toEqual(["gadgets.example.com@v3"])
    expect(failures).toEqual([{ groupVersion: "example.com/v2", error: "HTTP 503" }])
  })

  it("does not move a type to a lower version when its preferred version lacks watch", () => {
    const { types } = resolveTypes([
      {
        group: "example.com",
        versions: [
          { _tag: "Served", version: "v2", resources: [{ ...widgets, verbs: ["get", "list"] }] },
          { _tag: "Served", version: "v1", resources: [widgets] },
        ],
      },
    ])
    expect(types).toEqual([])
  })
})

describe("selectTypes", () => {
  const { types } = aggregated()
  const keys = (selected: ReadonlyArray<WatchedType>) => selected.map((t) => t.key)
  const none: ReadonlyArray<string> = []

  it("keeps everything without a list", () => {
    expect(selectTypes(types, { watchResourceTypes: none, excludeResourceTypes: none })).toEqual(types)
  })

  it("an allowlist names types by plural or plural.group", () => {
    expect(
      keys(
        selectTypes(types, {
          watchResourceTypes: ["configmaps", "deployments.apps", "horizontalpodautoscalers"],
          excludeResourceTypes: none,
        }),
      ),
    ).toEqual(["configmaps", "deployments.apps", "horizontalpodautoscalers.autoscaling"])
    expect(
      keys(selectTypes(types, { watchResourceTypes: ["deployments"], excludeResourceTypes: none })),
    ).toEqual(["deployments.apps"])
  })

  it("the core group matches by plural only", () => {
    for (const entry of ["configmaps.", "configmaps.core", "configmaps.v1", "configmap", "ConfigMap"]) {
      expect(selectTypes(types, { watchResourceTypes: [entry], excludeResourceTypes: none })).toEqual([])
    }
  })

  it("a plural names the type in every group; plural.group only that group's", () => {
    expect(keys(selectTypes(types, { watchResourceTypes: ["events"], excludeResourceTypes: none }))).toEqual([
      "events",
      "events.events.k8s.io",
    ])
    const withoutNewEvents = keys(
      selectTypes(types, { watchResourceTypes: none, excludeResourceTypes: ["events.events.k8s.io"] }),
    )
    expect(withoutNewEvents).toContain("events")
    expect(withoutNewEvents).not.toContain("events.events.k8s.io")
    expect(withoutNewEvents).toHaveLength(types.length - 1)
  })

  it("the default blocklist leaves out what it names and nothing else", () => {
    const exclude = ["events", "leases", "endpointslices", "componentstatuses", "customresourcedefinitions"]
    const selected = keys(selectTypes(types, { watchResourceTypes: none, excludeResourceTypes: exclude }))
    for (const gone of [
      "events",
      "events.events.k8s.io",
      "leases.coordination.k8s.io",
      "endpointslices.discovery.k8s.io",
      "customresourcedefinitions.apiextensions.k8s.io",
    ]) {
      expect(selected).not.toContain(gone)
    }
    expect(selected).toContain("configmaps")
    expect(selected).toContain("secrets")
    expect(selected).toHaveLength(types.length - 5)
  })

  it("the allowlist wins over the blocklist", () => {
    expect(
      keys(selectTypes(types, { watchResourceTypes: ["configmaps"], excludeResourceTypes: ["configmaps"] })),
    ).toEqual(["configmaps"])
  })

  it("entries are compared case-insensitively and trimmed", () => {
    expect(
      keys(selectTypes(types, { watchResourceTypes: [" Deployments.Apps "], excludeResourceTypes: none })),
    ).toEqual(["deployments.apps"])
  })
})
