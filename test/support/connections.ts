/**
 * Established TCP connections from a process to one port, read from /proc (Linux): the socket
 * inodes among the process's file descriptors, matched against /proc/<pid>/net/tcp{,6} entries in
 * state ESTABLISHED whose remote port is the one asked for.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs"

const ESTABLISHED = "01"

const socketInodes = (pid: number): Set<string> => {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match) inodes.add(match[1]!)
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

/** Connections of `pid` in state ESTABLISHED to `remotePort` (any address). */
export const establishedConnections = (pid: number, remotePort: number): number => {
  const inodes = socketInodes(pid)
  const port = remotePort.toString(16).toUpperCase().padStart(4, "0")
  let count = 0
  for (const table of ["tcp", "tcp6"]) {
    let text: string
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/)
      if (fields.length < 10) continue
      if (fields[3] !== ESTABLISHED || fields[2]!.split(":")[1] !== port) continue
      if (inodes.has(fields[9]!)) count++
    }
  }
  return count
}
