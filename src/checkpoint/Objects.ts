/**
 * The checkpoint in the cluster: one ConfigMap per part, `<name>`, `<name>-1`, `<name>-2`, …, each
 * holding its compressed bytes in `binaryData`. The first one also says how many parts there are,
 * and is written last: a reader never follows a count that a crash left ahead of its parts.
 */
import { Data, type Duration, Effect, Either, Option, Schema } from "effect"
import type { KubeClientShape } from "../kube/KubeClient.js"
import { isNotFound, type KubeError } from "../kube/KubeError.js"
import { CheckpointCorrupt } from "./Codec.js"

/** What the parts hold; a checkpoint of another format is not read. */
export const FORMAT = "gzip-sorted-lines/v1"
const IDS_KEY = "ids.gz"

/** A request about one of the checkpoint's ConfigMaps failed. */
export class CheckpointRequestError extends Data.TaggedError("CheckpointRequestError")<{
  readonly operation: "read" | "write" | "delete"
  readonly object: string
  readonly message: string
  readonly cause: KubeError
}> {}

const Strings = Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String })))

/** The fields of a ConfigMap the checkpoint reads. */
export const ConfigMap = Schema.Struct({
  metadata: Schema.Struct(
    { name: Schema.String },
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  ),
  data: Strings,
  binaryData: Strings,
})
export type ConfigMap = typeof ConfigMap.Type

export const partName = (name: string, index: number): string => (index === 0 ? name : `${name}-${index}`)

/** The ConfigMap of part `index` of `count`. */
export const toConfigMap = (
  name: string,
  namespace: string,
  index: number,
  count: number,
  bytes: Uint8Array,
) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: {
    name: partName(name, index),
    namespace,
    labels: { "app.kubernetes.io/name": "k8s-vectordb-sync", "app.kubernetes.io/component": "checkpoint" },
  },
  data: { format: FORMAT, part: String(index), parts: String(count) },
  binaryData: { [IDS_KEY]: Buffer.from(bytes).toString("base64") },
})

const corrupt = (object: string, what: string) =>
  Either.left(new CheckpointCorrupt({ message: `ConfigMap ${object}: ${what}` }))

/** How many parts the first ConfigMap announces. */
export const partCountOf = (configMap: ConfigMap): Either.Either<number, CheckpointCorrupt> => {
  const object = configMap.metadata.name
  const format = configMap.data?.format
  if (format !== FORMAT) return corrupt(object, `format ${JSON.stringify(format)}, expected ${FORMAT}`)
  const count = Number(configMap.data?.parts)
  return Number.isSafeInteger(count) && count >= 1 ? Either.right(count) : corrupt(object, "no part count")
}

/** The compressed bytes a part's ConfigMap holds. */
export const bytesOf = (configMap: ConfigMap): Either.Either<Uint8Array, CheckpointCorrupt> => {
  const text = configMap.binaryData?.[IDS_KEY]
  return text === undefined
    ? corrupt(configMap.metadata.name, `no binaryData.${IDS_KEY}`)
    : Either.right(Buffer.from(text, "base64"))
}

export interface ObjectStore {
  /** Every part's bytes, in order; `None` when there is no checkpoint yet. */
  readonly read: Effect.Effect<
    Option.Option<ReadonlyArray<Uint8Array>>,
    CheckpointRequestError | CheckpointCorrupt
  >
  /** Writes the further parts, then the first one, then deletes parts no longer needed. */
  readonly write: (parts: ReadonlyArray<Uint8Array>) => Effect.Effect<void, CheckpointRequestError>
}

export interface ObjectStoreOptions {
  readonly namespace: string
  readonly name: string
  readonly requestTimeout: Duration.DurationInput
}

export const make = (kube: KubeClientShape, options: ObjectStoreOptions): ObjectStore => {
  const { name, namespace, requestTimeout } = options
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`
  const pathOf = (index: number) => `${collection}/${encodeURIComponent(partName(name, index))}`
  const failed = (operation: CheckpointRequestError["operation"], index: number) => (cause: KubeError) =>
    new CheckpointRequestError({
      operation,
      object: `${namespace}/${partName(name, index)}`,
      message: `${operation} ConfigMap ${namespace}/${partName(name, index)}: ${cause.message}`,
      cause,
    })
  // Parts that may exist beyond the current count (read or written before): deleted after a write
  // that needs fewer.
  let existing = 0

  const get = (index: number) =>
    kube.get(pathOf(index), { schema: ConfigMap, timeout: requestTimeout }).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeedNone),
      Effect.mapError(failed("read", index)),
    )

  const readPart = (index: number) =>
    Effect.flatMap(get(index), (found) =>
      Option.match(found, {
        onNone: () =>
          Effect.fail(
            new CheckpointCorrupt({ message: `ConfigMap ${namespace}/${partName(name, index)} is missing` }),
          ),
        onSome: (configMap) => bytesOf(configMap),
      }),
    )

  const read = Effect.gen(function* () {
    const head = yield* get(0)
    if (Option.isNone(head)) return Option.none()
    const count = yield* partCountOf(head.value)
    existing = Math.max(existing, count)
    const first = yield* bytesOf(head.value)
    const rest = yield* Effect.forEach(
      Array.from({ length: count - 1 }, (_, i) => i + 1),
      readPart,
      { concurrency: 4 },
    )
    return Option.some([first, ...rest])
  })

  /** PUT without a resourceVersion (a ConfigMap allows unconditional updates), POST if missing. */
  const put = (index: number, count: number, bytes: Uint8Array) => {
    const body = toConfigMap(name, namespace, index, count, bytes)
    const options = { schema: ConfigMap, timeout: requestTimeout }
    return kube.put(pathOf(index), body, options).pipe(
      Effect.catchIf(isNotFound, () => kube.post(collection, body, options)),
      Effect.mapError(failed("write", index)),
    )
  }

  const remove = (index: number) =>
    kube.delete(pathOf(index), { schema: Schema.Unknown, timeout: requestTimeout }).pipe(
      Effect.asVoid,
      Effect.catchIf(isNotFound, () => Effect.void),
      Effect.mapError(failed("delete", index)),
    )

  const write = (parts: ReadonlyArray<Uint8Array>) =>
    Effect.gen(function* () {
      const count = parts.length
      yield* Effect.forEach(parts.slice(1), (bytes, i) => put(i + 1, count, bytes), { concurrency: 4 })
      yield* put(0, count, parts[0] ?? new Uint8Array())
      existing = Math.max(existing, count)
      yield* Effect.forEach(
        Array.from({ length: existing - count }, (_, i) => count + i),
        remove,
        { concurrency: 4 },
      )
      existing = count
    })

  return { read, write }
}
