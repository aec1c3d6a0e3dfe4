import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { formatCreatedAt, instanceId, toInstanceRecord } from "../../../src/record/Instance.js"
import {
  CapabilitiesPayload,
  decodeSyncPayload,
  InstanceRecord,
  SyncPayload,
} from "../../../src/record/Payload.js"

const deployment = { group: "apps", version: "v1", kind: "Deployment" }
const namespaceKind = { group: "", version: "v1", kind: "Namespace" }

describe("toInstanceRecord", () => {
  it("builds the record of the payload contract from metadata and the watched kind", () => {
    expect(
      toInstanceRecord(deployment, {
        name: "nginx",
        namespace: "default",
        labels: { app: "nginx" },
        annotations: {
          description: "Main web server",
          "kubectl.kubernetes.io/last-applied-configuration": "{...}",
          "deployment.kubernetes.io/revision": "3",
          "meta.helm.sh/release-name": "web",
          "helm.sh/chart": "web-1.0.0",
          "control-plane.alpha.kubernetes.io/leader": "x",
          "kubernetes.io/description": "dropped too",
          "example.com/owner": "team-a",
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
      annotations: { description: "Main web server", "example.com/owner": "team-a" },
      createdAt: "2026-02-20T10:00:00Z",
    })
  })

  it("uses _cluster for cluster-scoped objects and the bare version for the core group", () => {
    const record = toInstanceRecord(namespaceKind, {
      name: "kube-system",
      creationTimestamp: "2026-01-01T00:00:00Z",
    })
    expect(record?.id).toBe("_cluster/v1/Namespace/kube-system")
    expect(record?.namespace).toBe("_cluster")
    expect(record?.apiVersion).toBe("v1")
    expect(record?.apiGroup).toBe("")
  })

  it("gives {} for absent or null labels and annotations", () => {
    const record = toInstanceRecord(namespaceKind, { name: "a", labels: null, annotations: undefined })
    expect(record?.labels).toEqual({})
    expect(record?.annotations).toEqual({})
  })

  it("sorts keys so that equal content serialises equally", () => {
    const a = toInstanceRecord(deployment, { name: "x", namespace: "n", labels: { b: "2", a: "1" } })
    const b = toInstanceRecord(deployment, { name: "x", namespace: "n", labels: { a: "1", b: "2" } })
    expect(JSON.stringify(a)).toBe(JSON.stringify(b))
  })

  it("has no record without a name", () => {
    expect(toInstanceRecord(deployment, { namespace: "n" })).toBeUndefined()
  })

  it("formats createdAt as RFC 3339 UTC with whole seconds", () => {
    expect(formatCreatedAt("2026-02-20T10:00:00Z")).toBe("2026-02-20T10:00:00Z")
    expect(formatCreatedAt("2026-02-20T12:00:00.987+02:00")).toBe("2026-02-20T10:00:00Z")
    expect(formatCreatedAt(new Date(Date.UTC(2026, 1, 20, 10, 0, 0, 999)))).toBe("2026-02-20T10:00:00Z")
    expect(formatCreatedAt(undefined)).toBe("1970-01-01T00:00:00Z")
  })

  it("builds ids as namespace/apiVersion/Kind/name", () => {
    expect(instanceId(deployment, "prod", "api")).toBe("prod/apps/v1/Deployment/api")
    expect(instanceId(namespaceKind, undefined, "prod")).toBe("_cluster/v1/Namespace/prod")
  })
})

describe("payload schemas", () => {
  it.effect("accept the example of the contract", () =>
    Effect.gen(function* () {
      const payload = yield* decodeSyncPayload({
        upserts: [
          {
            id: "default/apps/v1/Deployment/nginx",
            namespace: "default",
            name: "nginx",
            kind: "Deployment",
            apiVersion: "apps/v1",
            apiGroup: "apps",
            labels: { app: "nginx" },
            annotations: { description: "Main web server" },
            createdAt: "2026-02-20T10:00:00Z",
          },
        ],
        deletes: ["default/apps/v1/Deployment/old-service"],
      })
      expect(payload.deletes).toEqual(["default/apps/v1/Deployment/old-service"])
    }),
  )

  it("reject a payload without both arrays, a bad timestamp, a non-string label", () => {
    const decode = Schema.decodeUnknownEither(SyncPayload)
    expect(Either.isLeft(decode({ upserts: [] }))).toBe(true)
    const valid = toInstanceRecord(deployment, { name: "x", namespace: "n" })!
    expect(Either.isRight(decode({ upserts: [valid], deletes: [] }))).toBe(true)
    expect(
      Either.isLeft(decode({ upserts: [{ ...valid, createdAt: "2026-02-20T10:00:00.5Z" }], deletes: [] })),
    ).toBe(true)
    expect(Either.isLeft(decode({ upserts: [{ ...valid, labels: { a: 1 } }], deletes: [] }))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(InstanceRecord)({ ...valid, id: "" }))).toBe(true)
  })

  it("capabilities carry CRD names", () => {
    const decode = Schema.decodeUnknownEither(CapabilitiesPayload)
    expect(Either.isRight(decode({ upserts: ["certificates.cert-manager.io"], deletes: [] }))).toBe(true)
    expect(Either.isLeft(decode({ upserts: ["certificates.cert-manager.io"] }))).toBe(true)
  })
})
