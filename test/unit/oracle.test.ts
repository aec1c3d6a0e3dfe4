/**
 * The test oracle (test/support/oracle.ts) against the contract's own example, and the controller's
 * extraction against the oracle over seeded random metadata: two independent writings of the
 * contract must agree, so a drift in either one fails here before any cluster is involved.
 */
import { Either, Option } from "effect"
import { describe, expect, it } from "vitest"
import { Variables } from "../../src/config/Variables.js"
import { toInstanceRecord } from "../../src/record/Instance.js"
import { recordKeys } from "../../src/record/KeyFilter.js"
import { mulberry32 } from "../support/faults/random.js"
import {
  CONTRACT_DROPPED_ANNOTATION_PREFIXES,
  expectedRecord,
  type OracleMetadata,
  type OracleType,
  recordDifferences,
} from "../support/oracle.js"

const deployments: OracleType = { group: "apps", version: "v1", kind: "Deployment", plural: "deployments" }
const namespaces: OracleType = { group: "", version: "v1", kind: "Namespace", plural: "namespaces" }

describe("oracle", () => {
  it("gives the payload contract's example record", () => {
    expect(
      expectedRecord(deployments, {
        name: "nginx",
        namespace: "default",
        labels: { app: "nginx" },
        annotations: {
          description: "Main web server",
          "kubectl.kubernetes.io/last-applied-configuration": "{}",
        },
        creationTimestamp: "2026-02-20T10:00:00Z",
      }),
    ).toEqual({
      id: "default/apps/v1/Deployment/nginx",
      namespace: "default",
      name: "nginx",
      kind: "Deployment",
      apiVersion: "apps/v1",
      apiGroup: "apps",
      labels: { app: "nginx" },
      annotations: { description: "Main web server" },
      createdAt: "2026-02-20T10:00:00Z",
    })
  })

  it("uses _cluster, the bare core version, {} when empty, and cuts fractions in UTC", () => {
    expect(
      expectedRecord(namespaces, { name: "a", creationTimestamp: "2026-02-20T11:00:00.999+01:00" }),
    ).toEqual({
      id: "_cluster/v1/Namespace/a",
      namespace: "_cluster",
      name: "a",
      kind: "Namespace",
      apiVersion: "v1",
      apiGroup: "",
      labels: {},
      annotations: {},
      createdAt: "2026-02-20T10:00:00Z",
    })
  })

  it("keeps the annotations and labels that ANNOTATION_KEYS and LABEL_KEYS name", () => {
    const metadata: OracleMetadata = {
      name: "x",
      namespace: "n",
      labels: { app: "web", "app.kubernetes.io/name": "web" },
      annotations: { description: "d", "team.io/description": "t", other: "o", "a/b/description": "z" },
      creationTimestamp: "2026-02-20T10:00:00Z",
    }
    const record = (annotationKeys?: string, labelKeys?: string) =>
      expectedRecord(deployments, metadata, { annotationKeys, labelKeys })
    expect(record("description").annotations).toEqual({ description: "d", "team.io/description": "t" })
    expect(record("description,other").annotations).toEqual({ description: "d", other: "o" })
    expect(record(" *, ").annotations).toEqual({ description: "d", other: "o" })
    expect(record("*/*").annotations).toEqual({ "team.io/description": "t" })
    expect(record(undefined, "app.kubernetes.io/*").labels).toEqual({ "app.kubernetes.io/name": "web" })
    expect(record(undefined, ",").labels).toEqual({})
  })

  it("reports field differences, ignoring key order", () => {
    const want = expectedRecord(deployments, {
      name: "x",
      namespace: "n",
      labels: { a: "1", b: "2" },
      creationTimestamp: "2026-02-20T10:00:00Z",
    })
    expect(recordDifferences(want, { ...want, labels: { b: "2", a: "1" } })).toEqual([])
    expect(recordDifferences(want, { ...want, labels: { a: "1" } })).toHaveLength(1)
    expect(recordDifferences(want, { ...want, createdAt: "2026-02-20T10:00:00.000Z" })).toHaveLength(1)
    expect(recordDifferences(want, { ...want, spec: {} })).toEqual(["unexpected field spec"])
  })
})

describe("the controller's extraction agrees with the oracle", () => {
  it("over 2,000 seeded random objects", () => {
    const random = mulberry32(20260220)
    const keys = [
      ...CONTRACT_DROPPED_ANNOTATION_PREFIXES.map((p) => `${p}revision`),
      // Near misses: kept, since the rule is a prefix, not a substring.
      "example.kubernetes.io/x",
      "kubernetes.iox/y",
      "helm.sh",
      "description",
      "app",
    ]
    const types: ReadonlyArray<OracleType> = [
      deployments,
      namespaces,
      { group: "cert-manager.io", version: "v1", kind: "Certificate", plural: "certificates" },
      { group: "example.com", version: "v1beta2", kind: "Widget", plural: "widgets" },
    ]
    const map = () => {
      const out: Record<string, string> = {}
      for (let i = random.int(4); i > 0; i--) out[random.pick(keys)] = `v${random.int(100)}`
      return out
    }
    for (let i = 0; i < 2_000; i++) {
      const type = random.pick(types)
      const seconds = 1_500_000_000 + random.int(400_000_000)
      const metadata: OracleMetadata = {
        name: `o-${random.int(1000)}`,
        ...(type.kind === "Namespace" ? {} : { namespace: random.pick(["default", "kube-system", "n-1"]) }),
        ...(random.chance(0.5) ? { labels: map() } : {}),
        ...(random.chance(0.5) ? { annotations: map() } : {}),
        creationTimestamp: new Date(seconds * 1000).toISOString().replace(".000Z", "Z"),
      }
      const got = toInstanceRecord(type, metadata)
      expect(recordDifferences(expectedRecord(type, metadata), got), JSON.stringify(metadata)).toEqual([])
    }
  })
})

describe("the controller's key filters agree with the oracle", () => {
  it("over 2,000 seeded random objects and settings", () => {
    const random = mulberry32(20260301)
    const keys = [
      "description",
      "team.io/description",
      "kubernetes.io/description",
      "my-description",
      "descriptions",
      "app",
      "App",
      "app.kubernetes.io/name",
      "app.kubernetes.io/part-of",
      "team.io/owner",
      "a.team.io/owner",
      "helm.sh/chart",
      "owner",
      "x.y",
    ]
    const settings = [
      undefined,
      "description",
      "description,owner",
      "*",
      "*/*",
      "*,*/*",
      "app.kubernetes.io/*",
      "*/owner, app",
      "*.team.io/*",
      "*description*",
      "x.y,a*",
      ",",
    ]
    const parse = (text: string | undefined) =>
      text === undefined
        ? Option.none()
        : Option.some(Either.getOrThrow(Variables.ANNOTATION_KEYS.parse(text)))
    const map = () => {
      const out: Record<string, string> = {}
      for (let i = random.int(6); i > 0; i--) out[random.pick(keys)] = `v${random.int(100)}`
      return out
    }
    for (let i = 0; i < 2_000; i++) {
      const annotationKeys = random.pick(settings)
      const labelKeys = random.pick(settings)
      const metadata: OracleMetadata = {
        name: `o-${i}`,
        namespace: "n",
        labels: map(),
        annotations: map(),
        creationTimestamp: "2026-02-20T10:00:00Z",
      }
      const got = toInstanceRecord(
        deployments,
        metadata,
        recordKeys({ annotationKeys: parse(annotationKeys), labelKeys: parse(labelKeys) }),
      )
      const want = expectedRecord(deployments, metadata, { annotationKeys, labelKeys })
      expect(recordDifferences(want, got), JSON.stringify({ annotationKeys, labelKeys, metadata })).toEqual(
        [],
      )
    }
  })
})
