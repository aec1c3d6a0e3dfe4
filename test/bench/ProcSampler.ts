/**
 * Samples a process tree from /proc (Linux): resident memory (VmRSS, VmHWM) and CPU time (utime +
 * stime). The tree, so that a controller started through a wrapper (`npm start`, a shell) is
 * measured whole; `node dist/main.js` is a tree of one.
 */

import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

export interface Sample {
  /** performance.now() */
  readonly at: number
  /** Sum of VmRSS over the tree, KiB. */
  readonly rssKiB: number
  /** Highest VmHWM (peak RSS) of any process of the tree, KiB. */
  readonly hwmKiB: number
  /** utime + stime over the tree, seconds. */
  readonly cpuSeconds: number
}

const descendants = (pid: number): Array<number> => {
  const all = [pid]
  for (let i = 0; i < all.length; i++) {
    const p = all[i]!
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, "utf8").trim()
        if (children !== "") all.push(...children.split(/\s+/).map(Number))
      }
    } catch {
      // gone meanwhile
    }
  }
  return all
}

const statusKiB = (status: string, field: string): number => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)
  return match ? Number(match[1]) : 0
}

/** One reading of the tree, or undefined when the root process is gone. */
export const sampleTree = (pid: number): Sample | undefined => {
  let rssKiB = 0
  let hwmKiB = 0
  let ticks = 0
  let rootSeen = false
  for (const p of descendants(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8")
      const stat = readFileSync(`/proc/${p}/stat`, "utf8")
      // Fields after the command name (which may hold spaces) start at state (field 3).
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14, 15)
      rssKiB += statusKiB(status, "VmRSS")
      hwmKiB = Math.max(hwmKiB, statusKiB(status, "VmHWM"))
      if (p === pid) rootSeen = true
    } catch {
      // exited meanwhile
    }
  }
  return rootSeen ? { at: performance.now(), rssKiB, hwmKiB, cpuSeconds: ticks / CLK_TCK } : undefined
}

export interface Sampler {
  readonly samples: ReadonlyArray<Sample>
  /** A fresh reading now (also recorded), or the last one if the process is gone. */
  readonly now: () => Sample
  readonly stop: () => void
}

export const startSampler = (pid: number, intervalMs = 200): Sampler => {
  const samples: Array<Sample> = []
  const take = () => {
    const sample = sampleTree(pid)
    if (sample !== undefined) samples.push(sample)
    return sample
  }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    samples,
    now: () => take() ?? samples.at(-1) ?? { at: performance.now(), rssKiB: 0, hwmKiB: 0, cpuSeconds: 0 },
    stop: () => clearInterval(timer),
  }
}

/** Samples whose time lies in [from, to]. */
export const between = (samples: ReadonlyArray<Sample>, from: number, to: number): Array<Sample> =>
  samples.filter((s) => s.at >= from && s.at <= to)
