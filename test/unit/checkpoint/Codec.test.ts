import { gzipSync } from "node:zlib"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Codec from "../../../src/checkpoint/Codec.js"
import * as Objects from "../../../src/checkpoint/Objects.js"

/** Ids shaped like a real cluster's: namespaced and cluster-scoped, core and grouped types. */
const ids = (n: number): Array<string> =>
  Array.from({ length: n }, (_, i) =>
    i % 10 === 0
      ? `_cluster/rbac.authorization.k8s.io/v1/ClusterRole/role-${i}`
      : `namespace-${i % 97}/v1/ConfigMap/cm-${(i * 7919) % 100_003}`,
  )

const decoded = (parts: ReadonlyArray<Uint8Array>) =>
  Either.getOrThrowWith(Codec.decode(parts), (error) => new Error(error.message))

describe("checkpoint codec", () => {
  it("round-trips: what is encoded decodes to the same ids, sorted and distinct", () => {
    const input = [...ids(2_000), ...ids(50)]
    const parts = Codec.encode(input, 1_000_000)
    expect(parts).toHaveLength(1)
    const output = decoded(parts)
    expect(output).toEqual([...new Set(input)].sort())
    expect(output.length).toBe(new Set(input).size)
  })

  it("stores the ids sorted, so that the same set gives the same bytes", () => {
    const input = ids(500)
    const reversed = [...input].reverse()
    expect(Buffer.from(Codec.encode(input, 1_000_000)[0]!)).toEqual(
      Buffer.from(Codec.encode(reversed, 1_000_000)[0]!),
    )
  })

  it("an empty set is one part that decodes to no ids", () => {
    const parts = Codec.encode([], 1_024)
    expect(parts).toHaveLength(1)
    expect(decoded(parts)).toEqual([])
  })

  it("splits into parts of at most partBytes, each a sorted range that decodes on its own", () => {
    const input = ids(20_000)
    const parts = Codec.encode(input, 4_096)
    expect(parts.length).toBeGreaterThan(5)
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(4_096)
    const ranges = parts.map((part) => decoded([part]))
    for (const range of ranges) expect(range).toEqual([...range].sort())
    // Contiguous ranges in order: each starts after the previous one ends.
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]! > ranges[i - 1]!.at(-1)!).toBe(true)
    expect(decoded(parts)).toEqual([...new Set(input)].sort())
    expect(Codec.sizeOf(parts)).toBe(parts.reduce((n, p) => n + p.length, 0))
  })

  it("the union of old and new parts (a crash between two writes) names every id of either", () => {
    const before = ids(3_000)
    const after = [...ids(3_000).slice(500), "fresh/v1/ConfigMap/new-one"]
    const old = Codec.encode(before, 2_048)
    const fresh = Codec.encode(after, 2_048)
    const mixed = [...fresh.slice(0, 2), ...old.slice(2)]
    const union = new Set(decoded(mixed))
    for (const id of fresh.slice(0, 2).flatMap((p) => decoded([p]))) expect(union.has(id)).toBe(true)
    for (const id of old.slice(2).flatMap((p) => decoded([p]))) expect(union.has(id)).toBe(true)
  })

  it("bytes that are not gzip fail with a tagged error naming the part", () => {
    const good = Codec.encode(ids(10), 1_000_000)[0]!
    const result = Codec.decode([good, new TextEncoder().encode("not gzip at all")])
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left._tag).toBe("CheckpointCorrupt")
      expect(result.left.message).toContain("part 1 is not gzip data")
    }
  })

  it("a truncated part fails (gzip's own checksum and length)", () => {
    const good = Codec.encode(ids(1_000), 1_000_000)[0]!
    const result = Codec.decode([good.slice(0, good.length - 8)])
    expect(Either.isLeft(result) && result.left._tag).toBe("CheckpointCorrupt")
  })

  it("gzip text that is not ids fails too", () => {
    const result = Codec.decode([gzipSync("hello\nworld")])
    expect(Either.isLeft(result) && result.left.message).toContain('holds "hello", not an id')
  })
})

describe("checkpoint ConfigMaps", () => {
  it("a part's ConfigMap holds its bytes and, for the first, the part count", () => {
    const bytes = Codec.encode(ids(100), 1_000_000)[0]!
    const configMap = Objects.toConfigMap("cp", "ns", 0, 3, bytes)
    expect(configMap.metadata).toMatchObject({ name: "cp", namespace: "ns" })
    expect(Objects.toConfigMap("cp", "ns", 2, 3, bytes).metadata.name).toBe("cp-2")
    expect(Objects.partCountOf(configMap)).toEqual(Either.right(3))
    const back = Either.getOrThrow(Objects.bytesOf(configMap))
    expect(Buffer.from(back)).toEqual(Buffer.from(bytes))
  })

  it("another format, a missing count or missing bytes are CheckpointCorrupt", () => {
    const base = { metadata: { name: "cp" } }
    const wrong = Objects.partCountOf({ ...base, data: { format: "v0", parts: "1" } })
    expect(Either.isLeft(wrong) && wrong.left.message).toContain('format "v0"')
    const uncounted = Objects.partCountOf({ ...base, data: { format: Objects.FORMAT } })
    expect(Either.isLeft(uncounted) && uncounted.left.message).toContain("no part count")
    const empty = Objects.bytesOf({ ...base, data: { format: Objects.FORMAT, parts: "1" } })
    expect(Either.isLeft(empty) && empty.left._tag).toBe("CheckpointCorrupt")
  })
})
