/**
 * The real controller process (`node dist/main.js`, what `npm start` runs) for tests: build once per
 * file, spawn with a clean environment, read its output and JSON log lines (for diagnostics, and for
 * "not one log line": tests observe events through /metrics, receivers, proxies and the Lease).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { once } from "node:events"
import { kubeContext } from "../kube/harness.js"
import { eventually } from "./controller.js"
import { freePort } from "./ports.js"

export { freePort }

/** Compiles src/ to dist/ (what `npm start` runs); a type error fails the test file. */
export const buildDist = (): void => {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" })
}

export interface Spawned {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** `at`: when the process was seen to exit (Date.now()). */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

const running = new Set<ChildProcess>()

export const spawnController = (env: Record<string, string>): Spawned => {
  const child = spawn(process.execPath, ["dist/main.js"], {
    // The checkpoint is off unless a test turns it on (with a name of its own): processes of
    // different tests share the control plane and its `default` namespace, and one test's
    // checkpoint would make another's controller delete ids it never sent.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", CHECKPOINT: "false", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })
  running.add(child)
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exit = once(child, "exit").then(([code, signal]) => {
    running.delete(child)
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, at: Date.now() }
  })
  return { child, stdout: () => stdout, stderr: () => stderr, exit }
}

export interface Started extends Spawned {
  readonly healthUrl: string
  readonly apiUrl: string
}

/**
 * The controller process on the test cluster's ConfigMaps, with short windows and retries, sending
 * to `receiverUrl`; resolves once `/readyz` answers 200. `env` adds to or overrides the defaults.
 */
export const startReady = async (receiverUrl: string, env: Record<string, string> = {}): Promise<Started> => {
  const healthPort = await freePort()
  const apiPort = await freePort()
  const spawned = spawnController({
    KUBECONFIG: kubeContext().adminKubeconfig,
    INSTANCES_ENDPOINT: receiverUrl,
    WATCH_RESOURCE_TYPES: "configmaps",
    HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
    API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
    DEBOUNCE_WINDOW_MS: "200",
    DEBOUNCE_MAX_WAIT_MS: "2000",
    BATCH_FLUSH_INTERVAL_MS: "100",
    RETRY_INITIAL_BACKOFF_MS: "100",
    RETRY_MAX_BACKOFF_MS: "1000",
    SHUTDOWN_TIMEOUT_MS: "10000",
    ...env,
  })
  const healthUrl = `http://127.0.0.1:${healthPort}`
  await eventually(
    async () => (await fetch(`${healthUrl}/readyz`).catch(() => undefined))?.status === 200,
    () => `never ready: ${spawned.stderr().slice(-2_000)}`,
  )
  return { ...spawned, healthUrl, apiUrl: `http://127.0.0.1:${apiPort}` }
}

/** SIGKILLs every process this module spawned that is still running (for afterAll). */
export const killAll = async (): Promise<void> => {
  const left = [...running]
  for (const child of left) child.kill("SIGKILL")
  await Promise.all(left.map((child) => (child.exitCode === null ? once(child, "exit") : undefined)))
}

export interface JsonLogLine {
  readonly message: string | ReadonlyArray<string>
  readonly logLevel: string
  readonly annotations?: Readonly<Record<string, unknown>>
}

/** The JSON log lines in `stderr` (other lines are skipped). */
export const logLines = (stderr: string): Array<JsonLogLine> =>
  stderr.split("\n").flatMap((line) => {
    if (!line.startsWith("{")) return []
    try {
      return [JSON.parse(line) as JsonLogLine]
    } catch {
      return []
    }
  })
