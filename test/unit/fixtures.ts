/** Records and changes for tests, built through the same extraction the controller uses. */
import * as Change from "../../src/record/Change.js"
import { toInstanceRecord } from "../../src/record/Instance.js"
import type { InstanceRecord } from "../../src/record/Payload.js"

export const record = (
  name: string,
  labels: Record<string, string> = {},
  namespace = "default",
): InstanceRecord =>
  toInstanceRecord(
    { group: "", version: "v1", kind: "ConfigMap" },
    { name, namespace, labels, creationTimestamp: "2026-02-20T10:00:00Z" },
  )!

export const upsert = (name: string, labels: Record<string, string> = {}) =>
  Change.upsert(record(name, labels))

export const remove = (name: string) => Change.remove(record(name).id)
