/**
 * Size of the checkpoint (src/checkpoint/) at 100,000 ids, for BENCHMARKS.md: the compressed bytes,
 * the number of ConfigMaps at the default part size, and the time to encode and decode.
 *
 *   npx vite-node test/bench/checkpointSize.ts [ids]
 */
import { Either } from "effect"
import * as Codec from "../../src/checkpoint/Codec.js"
import { defaultValue, Variables } from "../../src/config/Variables.js"

const count = Number(process.argv[2] ?? 100_000)
const partBytes = defaultValue(Variables.CHECKPOINT_PART_BYTES)

/** Deterministic pseudo-random numbers (mulberry32), so that every run measures the same ids. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const next = random(42)
const alphabet = "bcdfghjklmnpqrstvwxz2456789"
const suffix = (length: number) =>
  Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join("")

/** The shape the issue names: `namespace-12/v1/ConfigMap/cm-12345`. */
const numbered = Array.from({ length: count }, (_, i) => `namespace-${i % 100}/v1/ConfigMap/cm-${i}`)

/**
 * A cluster's mix: per workload a Deployment, its ReplicaSet and Pods with generated suffixes (as
 * the controllers name them), a Service, a ConfigMap and a Secret, in 200 namespaces.
 */
const mixed: Array<string> = []
for (let app = 0; mixed.length < count; app++) {
  const ns = `team-${app % 200}`
  const name = `app-${app}`
  const replicaSet = `${name}-${suffix(10)}`
  mixed.push(
    `${ns}/apps/v1/Deployment/${name}`,
    `${ns}/apps/v1/ReplicaSet/${replicaSet}`,
    `${ns}/v1/Pod/${replicaSet}-${suffix(5)}`,
    `${ns}/v1/Pod/${replicaSet}-${suffix(5)}`,
    `${ns}/v1/Pod/${replicaSet}-${suffix(5)}`,
    `${ns}/v1/Service/${name}`,
    `${ns}/v1/ConfigMap/${name}-config`,
    `${ns}/v1/Secret/${name}-tls`,
  )
}
mixed.length = count

const measure = (label: string, ids: ReadonlyArray<string>) => {
  const plain = ids.reduce((n, id) => n + Buffer.byteLength(id) + 1, 0)
  const encodeStart = performance.now()
  const parts = Codec.encode(ids, partBytes)
  const encodeMs = performance.now() - encodeStart
  const decodeStart = performance.now()
  const back = Either.getOrThrow(Codec.decode(parts))
  const decodeMs = performance.now() - decodeStart
  if (back.length !== new Set(ids).size) throw new Error(`${label}: decoded ${back.length} ids`)
  const bytes = Codec.sizeOf(parts)
  console.log(
    `${label}: ${ids.length} ids, ${plain} bytes as text, ${bytes} bytes compressed ` +
      `(${(bytes / ids.length).toFixed(2)} bytes/id, ${Math.ceil((bytes * 4) / 3)} as base64), ` +
      `${parts.length} ConfigMap(s) of at most ${partBytes} bytes; encode ${encodeMs.toFixed(0)} ms, decode ${decodeMs.toFixed(0)} ms`,
  )
}

measure("numbered (namespace-12/v1/ConfigMap/cm-12345)", numbered)
measure("mixed workloads (Deployment, ReplicaSet, 3 Pods, Service, ConfigMap, Secret)", mixed)
