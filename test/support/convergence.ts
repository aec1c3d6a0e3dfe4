/**
 * Compares what the receiver holds with a fresh list of the cluster: the one question every
 * fault test asks ("is the index right?"). The expected records come from `oracle.ts`, written from
 * the payload contract, never from the controller's own extraction.
 */
import { adminRequest, expectStatus } from "../kube/harness.js"
import {
  type ExpectedRecord,
  expectedRecord,
  type OracleMetadata,
  type OracleType,
  recordDifferences,
} from "./oracle.js"
import type { Receiver } from "./Receiver.js"

/** A type the test lists itself; `version` is the preferred version the test expects to be watched. */
export type ListedType = OracleType

const pathOf = (type: ListedType, namespace: string | undefined) => {
  const base = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`
  return namespace === undefined ? `${base}/${type.plural}` : `${base}/namespaces/${namespace}/${type.plural}`
}

/** The records the contract says the receiver should hold for `types` in `namespace`. */
export const clusterRecords = async (
  types: ReadonlyArray<ListedType>,
  namespace: string,
): Promise<Map<string, ExpectedRecord>> => {
  const records = new Map<string, ExpectedRecord>()
  for (const type of types) {
    const response = expectStatus(await adminRequest("GET", pathOf(type, namespace)), 200)
    const items = (response.json as { items: Array<{ metadata: OracleMetadata }> }).items
    for (const item of items) {
      const record = expectedRecord(type, item.metadata)
      records.set(record.id, record)
    }
  }
  return records
}

/** What the receiver holds for `namespace` (ids are `namespace/...`). */
export const receiverRecords = (receiver: Receiver, namespace: string): Map<string, unknown> =>
  new Map([...receiver.state].filter(([id]) => id.startsWith(`${namespace}/`)))

/**
 * Empty when the receiver agrees with the cluster; otherwise one line per difference: `missing`,
 * `extra`, or `stale <id> (<field>: <got>, expected <want>; ...)`.
 */
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
    if (got === undefined) {
      out.push(`missing ${id}`)
      continue
    }
    const fields = recordDifferences(record, got)
    if (fields.length > 0) out.push(`stale ${id} (${fields.join("; ")})`)
  }
  for (const id of actual.keys()) if (!expected.has(id)) out.push(`extra ${id}`)
  return out
}
