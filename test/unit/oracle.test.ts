/**
 * The test oracle (test/support/oracle.ts) against the contract's own example, and the controller's
 * extraction against the oracle over seeded random metadata: two independent writings of the
 * contract must agree, so a drift in either one fails here before any cluster is involved.
 */
import { describe, expect, it } from "vitest"
import { toInstanceRecord } from "../../src/record/Instance.js"
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
