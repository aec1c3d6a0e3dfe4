/**
 * Compares what the receiver holds with a fresh list of the cluster: the one question every
 * fault test asks ("is the index right?").
 */
import { type ResourceKind, toInstanceRecord } from "../../src/Instance.js"
import type { InstanceRecord } from "../../src/Payload.js"
import { adminRequest, expectStatus } from "../kube/harness.js"
import type { Receiver } from "./Receiver.js"

export interface ListedType extends ResourceKind {
  readonly plural: string
}

const pathOf = (type: ListedType, namespace: string | undefined) => {
  const base = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`
  return namespace === undefined ? `${base}/${type.plural}` : `${base}/namespaces/${namespace}/${type.plural}`
}

/** The records the cluster holds now for `types` in `namespace`, as the controller would send them. */
export const clusterRecords = async (
  types: ReadonlyArray<ListedType>,
  namespace: string,
): Promise<Map<string, InstanceRecord>> => {
  const records = new Map<string, InstanceRecord>()
  for (const type of types) {
    const response = expectStatus(await adminRequest("GET", pathOf(type, namespace)), 200)
    const items = (response.json as { items: Array<{ metadata: Record<string, never> }> }).items
    for (const item of items) {
      const record = toInstanceRecord(type, item.metadata)
      if (record) records.set(record.id, record)
    }
  }
  return records
}

/** What the receiver holds for `namespace` (ids are `namespace/...`). */
export const receiverRecords = (receiver: Receiver, namespace: string): Map<string, InstanceRecord> =>
  new Map([...receiver.state].filter(([id]) => id.startsWith(`${namespace}/`)))

/** Empty when the receiver agrees with the cluster; otherwise one line per difference. */
export const differences = async (
  receiver: Receiver,
  types: ReadonlyArray<ListedType>,
  namespace: string,
): Promise<ReadonlyArray<string>> => {
  const expected = await clusterRecords(types, namespace)
  const actual = receiverRecords(receiver, namespace)
  const out: Array<string> = []
  for (const [id, record] of expected) {
    const got = actual.get(id)
    if (got === undefined) out.push(`missing ${id}`)
    else if (JSON.stringify(got) !== JSON.stringify(record)) out.push(`stale ${id}`)
  }
  for (const id of actual.keys()) if (!expected.has(id)) out.push(`extra ${id}`)
  return out
}
