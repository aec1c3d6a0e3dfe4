/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by where the code
 * lives (our src, effect, @effect/platform, node internals, GC, idle).
 *
 *   npx vite-node test/bench/profile.ts <file.cpuprofile> [top]
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface ProfileSummary {
  readonly totalMs: number
  /** Non-idle sampled time. */
  readonly busyMs: number
  readonly byArea: ReadonlyArray<{ area: string; ms: number; share: number }>
  readonly topFrames: ReadonlyArray<{ frame: string; area: string; ms: number; share: number }>
}

const areaOf = (frame: CallFrame): string => {
  const { url, functionName } = frame
  if (url === "") {
    if (functionName === "(idle)") return "(idle)"
    if (functionName === "(garbage collector)") return "GC"
    if (functionName === "(program)") return "(program: V8/native)"
    return "native"
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg) return pkg[1]!
  // The bench's own heap snapshot (--heap-snapshot) is not the controller's work.
  if (functionName === "writeHeapSnapshot") return "(heap snapshot)"
  if (url.startsWith("node:")) return "node internals"
  if (/\/dist\/|\/src\//.test(url)) return "controller (src)"
  return url
}

export const summarise = (profile: CpuProfile, top = 25): ProfileSummary => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const frames = new Map<string, { area: string; us: number }>()
  const areas = new Map<string, number>()
  let total = 0
  let idle = 0
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame
    const area = areaOf(frame)
    total += us
    if (area === "(idle)" || area === "(heap snapshot)") idle += us
    areas.set(area, (areas.get(area) ?? 0) + us)
    const file = frame.url.replace(/^.*\/node_modules\//, "").replace(/^.*\/(dist|src)\//, "$1/")
    const name = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`
    const entry = frames.get(name) ?? { area, us: 0 }
    entry.us += us
    frames.set(name, entry)
  }
  const busy = total - idle
  const ms = (us: number) => Math.round(us / 100) / 10
  const share = (us: number) => Math.round((us / Math.max(busy, 1)) * 1000) / 10
  return {
    totalMs: ms(total),
    busyMs: ms(busy),
    byArea: [...areas]
      .filter(([area]) => area !== "(idle)" && area !== "(heap snapshot)")
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: ms(us), share: share(us) })),
    topFrames: [...frames]
      .filter(([, f]) => f.area !== "(idle)" && f.area !== "(heap snapshot)")
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([frame, f]) => ({ frame, area: f.area, ms: ms(f.us), share: share(f.us) })),
  }
}

export const renderSummary = (summary: ProfileSummary): string => {
  const lines = [
    `sampled ${summary.totalMs} ms, busy ${summary.busyMs} ms (idle and the bench's heap snapshot excluded); shares are of busy time`,
    "",
    "| area | self ms | share |",
    "| --- | ---: | ---: |",
    ...summary.byArea.map((a) => `| ${a.area} | ${a.ms} | ${a.share}% |`),
    "",
    "| top frames (self time) | area | ms | share |",
    "| --- | --- | ---: | ---: |",
    ...summary.topFrames.map((f) => `| \`${f.frame}\` | ${f.area} | ${f.ms} | ${f.share}% |`),
  ]
  return lines.join("\n")
}

const file = process.argv[2]
if (file !== undefined && /\.cpuprofile$/.test(file)) {
  const top = Number(process.argv[3] ?? 25)
  process.stdout.write(
    `${renderSummary(summarise(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, top))}\n`,
  )
}
