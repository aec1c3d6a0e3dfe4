/**
 * `npm run demo` as a newcomer runs it: its own throwaway control plane, receiver and controller.
 * Non-interactive (`--once`) it stops by itself; interactive it stops cleanly on Ctrl-C (SIGINT).
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { describe, expect, it } from "vitest"
import { eventually } from "../support/controller.js"

const runDemo = (args: ReadonlyArray<string>) => {
  // Its own process group, like a terminal's foreground job: Ctrl-C signals npm and everything below it.
  const child = spawn("npm", ["run", "--silent", "demo", "--", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  })
  let output = ""
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  const exit = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }))
  return { child, output: () => output, exit }
}

describe("npm run demo", () => {
  it("--once: shows each kind of payload and the receiver's final state, then exits 0", async () => {
    const demo = runDemo(["--once"])
    expect((await demo.exit).code).toBe(0)
    const output = demo.output()
    expect(output).toMatch(/receiver got POST: upserts=\[[^\]]*"demo\/apps\/v1\/Deployment\/web"/)
    expect(output).toContain('deletes=["demo/v1/ConfigMap/settings"]')
    expect(output).toContain('demo/apps/v1/Deployment/web  labels={"app":"web","tier":"frontend"}')
    expect(output).not.toMatch(/demo\/v1\/ConfigMap\/settings {2}labels/)
    expect(output.trimEnd().endsWith("done")).toBe(true)
  }, 240_000)

  it("interactive: keeps watching until Ctrl-C, then stops cleanly", async () => {
    const demo = runDemo([])
    await eventually(
      () => demo.output().includes("Ctrl-C to stop"),
      () => demo.output(),
      200_000,
    )
    process.kill(-demo.child.pid!, "SIGINT")
    const exit = await demo.exit
    // npm itself dies of the SIGINT it passed on, as it does in a terminal; the demo under it must
    // have stopped cleanly: flushed, control plane stopped, "done" printed.
    expect(exit.code === 0 || exit.signal === "SIGINT").toBe(true)
    await eventually(
      () => demo.output().trimEnd().endsWith("done"),
      () => demo.output(),
      30_000,
    )
  }, 240_000)
})
