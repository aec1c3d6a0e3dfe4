import { describe, expect, it } from "vitest"
import { goneIds } from "../../../src/checkpoint/Gone.js"

const types = [
  { apiVersion: "v1", kind: "ConfigMap", synced: true },
  { apiVersion: "apps/v1", kind: "Deployment", synced: true },
  { apiVersion: "v1", kind: "Secret", synced: false },
]

describe("ids gone since the checkpoint", () => {
  it("an id of a listed type that the lists did not return is gone; one they returned is not", () => {
    const known = new Set(["ns/v1/ConfigMap/here", "ns/apps/v1/Deployment/web"])
    const outcome = goneIds(
      [
        "ns/v1/ConfigMap/here",
        "ns/v1/ConfigMap/deleted",
        "ns/apps/v1/Deployment/web",
        "ns/apps/v1/Deployment/old",
      ],
      known,
      types,
    )
    expect(outcome.gone).toEqual(["ns/v1/ConfigMap/deleted", "ns/apps/v1/Deployment/old"])
    expect(outcome.undecided).toEqual([])
  })

  it("ids of types no longer watched count as gone (as in a resync)", () => {
    const outcome = goneIds(["_cluster/example.com/v1beta1/Widget/w", "ns/v1/Pod/p"], new Set(), types)
    expect(outcome.gone).toEqual(["_cluster/example.com/v1beta1/Widget/w", "ns/v1/Pod/p"])
  })

  it("ids of a watched type that has not listed (forbidden, failing) are kept, not deleted", () => {
    const outcome = goneIds(["ns/v1/Secret/s", "ns/v1/ConfigMap/c"], new Set(), types)
    expect(outcome.gone).toEqual(["ns/v1/ConfigMap/c"])
    expect(outcome.undecided).toEqual(["ns/v1/Secret/s"])
  })
})
