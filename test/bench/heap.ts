/**
 * Summarises a V8 heap snapshot (`node --heapsnapshot-signal=SIGUSR2`, or the bench's
 * `--heap-snapshot`): self size by node type and by constructor name, the way DevTools' Summary
 * view groups them (without retained sizes, which need the dominator tree).
 *
 *   npx vite-node test/bench/heap.ts <file.heapsnapshot> [top]
 */
import { readFileSync } from "node:fs"

interface HeapSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: ReadonlyArray<string>
      readonly node_types: ReadonlyArray<ReadonlyArray<string> | string>
    }
    readonly node_count: number
  }
  readonly nodes: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
}

export interface HeapSummary {
  readonly totalMiB: number
  readonly byType: ReadonlyArray<{ type: string; mib: number; count: number }>
  readonly top: ReadonlyArray<{ name: string; type: string; mib: number; count: number }>
}

const MiB = 1024 * 1024
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10

export const summariseHeap = (heap: HeapSnapshot, top = 25): HeapSummary => {
  const fields = heap.snapshot.meta.node_fields
  const types = heap.snapshot.meta.node_types[0] as ReadonlyArray<string>
  const width = fields.length
  const typeAt = fields.indexOf("type")
  const nameAt = fields.indexOf("name")
  const sizeAt = fields.indexOf("self_size")
  const byType = new Map<string, { bytes: number; count: number }>()
  const byName = new Map<string, { type: string; bytes: number; count: number }>()
  let total = 0
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]!] ?? "?"
    const size = heap.nodes[i + sizeAt]!
    total += size
    const t = byType.get(type) ?? { bytes: 0, count: 0 }
    t.bytes += size
    t.count++
    byType.set(type, t)
    // Strings are named by their content: group them all; objects and closures by constructor/name.
    const raw = heap.strings[heap.nodes[i + nameAt]!] ?? ""
    const name =
      type === "string" || type === "concatenated string" || type === "sliced string"
        ? "(strings)"
        : type === "code"
          ? "(compiled code)"
          : type === "array"
            ? `(internal array) ${raw.slice(0, 40)}`
            : `${raw.slice(0, 60) || "(anonymous)"}`
    const key = `${type}\u0000${name}`
    const n = byName.get(key) ?? { type, bytes: 0, count: 0 }
    n.bytes += size
    n.count++
    byName.set(key, n)
  }
  return {
    totalMiB: mib(total),
    byType: [...byType]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .map(([type, t]) => ({ type, mib: mib(t.bytes), count: t.count })),
    top: [...byName]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, top)
      .map(([key, n]) => ({
        name: key.split("\u0000")[1]!,
        type: n.type,
        mib: mib(n.bytes),
        count: n.count,
      })),
  }
}

export const renderHeapSummary = (summary: HeapSummary): string =>
  [
    `heap snapshot: ${summary.totalMiB} MiB of live objects (self sizes)`,
    "",
    "| node type | MiB | count |",
    "| --- | ---: | ---: |",
    ...summary.byType.map((t) => `| ${t.type} | ${t.mib} | ${t.count} |`),
    "",
    "| largest groups (self size) | type | MiB | count |",
    "| --- | --- | ---: | ---: |",
    ...summary.top.map((t) => `| \`${t.name.replaceAll("|", "\\|")}\` | ${t.type} | ${t.mib} | ${t.count} |`),
  ].join("\n")

const file = process.argv[2]
if (file !== undefined && /\.heapsnapshot$/.test(file)) {
  const top = Number(process.argv[3] ?? 25)
  process.stdout.write(
    `${renderHeapSummary(summariseHeap(JSON.parse(readFileSync(file, "utf8")) as HeapSnapshot, top))}\n`,
  )
}
