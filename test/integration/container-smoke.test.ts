/**
 * The container image without a container engine: the runtime stage of the Dockerfile rebuilt on
 * the machine and started the way Kubernetes would start it with the chart's securityContext.
 *
 * - Production build only: `tsc -p tsconfig.build.json` output plus `npm ci` with the very flags of
 *   the Dockerfile's deps stage (read from the Dockerfile), package.json and package-lock.json, in
 *   a fresh folder. No src/, no test/, no dev dependencies. The `npm ci` result is cached per
 *   package-lock.json and flags under ~/.cache/k8s-vectordb-sync/prod-deps.
 * - Started as `nobody` (setpriv: uid/gid 65534, no supplementary groups, no_new_privs) inside a
 *   private mount namespace whose root filesystem is remounted read-only (readOnlyRootFilesystem:
 *   true), with that folder as working directory and HOME pointing nowhere.
 * - It answers /healthz and /readyz, syncs to a receiver, and exits 0 on SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { once } from "node:events"
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { homedir, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createNamespace, deleteNamespace, kubeContext } from "../kube/harness.js"
import { eventually } from "../support/controller.js"
import { freePort } from "../support/ports.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const NOBODY = "65534"
const root = resolve(".")

/** The production install command of the Dockerfile's deps stage, e.g. ["ci", "--omit=dev", ...]. */
const dockerfileNpmArgs = (): ReadonlyArray<string> => {
  const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8")
  const match = /^FROM\s+\S+\s+AS\s+deps\s*$[\s\S]*?^RUN\s+npm\s+(ci\s[^\\&\n]*)/im.exec(dockerfile)
  if (match?.[1] === undefined) throw new Error("Dockerfile: no `RUN npm ci ...` in a stage named deps")
  const args = match[1].trim().split(/\s+/)
  if (!args.includes("--omit=dev"))
    throw new Error(`Dockerfile deps stage installs dev dependencies: npm ${args.join(" ")}`)
  return args
}

/** node_modules for production, cached by package-lock.json + npm flags + Node major version. */
const productionModules = (npmArgs: ReadonlyArray<string>): string => {
  const lock = readFileSync(join(root, "package-lock.json"))
  const key = createHash("sha256")
    .update(lock)
    .update(readFileSync(join(root, "package.json")))
    .update(npmArgs.join(" "))
    .update(process.versions.node.split(".")[0] ?? "")
    .digest("hex")
    .slice(0, 16)
  const cacheRoot = join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"),
    "k8s-vectordb-sync",
    "prod-deps",
  )
  const done = join(cacheRoot, key)
  if (existsSync(join(done, "node_modules"))) return join(done, "node_modules")
  const staging = `${done}.partial.${process.pid}`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  copyFileSync(join(root, "package.json"), join(staging, "package.json"))
  copyFileSync(join(root, "package-lock.json"), join(staging, "package-lock.json"))
  execFileSync("npm", [...npmArgs], { cwd: staging, stdio: ["ignore", "inherit", "inherit"] })
  rmSync(done, { recursive: true, force: true })
  renameSync(staging, done)
  return join(done, "node_modules")
}

const requireTool = (name: string): void => {
  if (spawnSync("sh", ["-c", `command -v ${name}`]).status !== 0) {
    throw new Error(`${name} is required for the container-like smoke test (util-linux); it is not on PATH`)
  }
}

let work: string
let app: string
let node: string
let receiver: Receiver
const running: Array<ChildProcess> = []

/**
 * Runs `command` as nobody in a private mount namespace whose root filesystem is read-only:
 * what a pod with runAsUser 65534 and readOnlyRootFilesystem gets. `exec` keeps one process, so a
 * signal sent to the child reaches node itself, as with the image's exec-form ENTRYPOINT.
 */
const asContainer = (command: ReadonlyArray<string>, env: Record<string, string>): ChildProcess =>
  spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--",
      "sh",
      "-c",
      `mount -o remount,bind,ro / && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups --no-new-privs -- "$@"`,
      "sh",
      ...command,
    ],
    {
      cwd: app,
      env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  )

const collect = (child: ChildProcess) => {
  let out = ""
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString()
  })
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString()
  })
  const exit = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }))
  return { output: () => out, exit }
}

beforeAll(async () => {
  for (const tool of ["unshare", "setpriv", "mount"]) requireTool(tool)
  const npmArgs = dockerfileNpmArgs()
  work = mkdtempSync(join(tmpdir(), "vectordb-sync-image-"))
  chmodSync(work, 0o755)
  app = join(work, "app")
  mkdirSync(app)
  // The image's /app: dist, production node_modules, package.json, package-lock.json. Nothing else.
  execFileSync(
    process.execPath,
    [
      join(root, "node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      join(app, "dist"),
    ],
    {
      cwd: root,
      stdio: "inherit",
    },
  )
  cpSync(productionModules(npmArgs), join(app, "node_modules"), { recursive: true })
  copyFileSync(join(root, "package.json"), join(app, "package.json"))
  copyFileSync(join(root, "package-lock.json"), join(app, "package-lock.json"))
  // The runtime's node binary, reachable by nobody (the one running the tests may sit in /root).
  mkdirSync(join(work, "bin"))
  node = join(work, "bin", "node")
  try {
    linkSync(process.execPath, node)
  } catch {
    copyFileSync(process.execPath, node)
  }
  chmodSync(node, 0o755)
  // A kubeconfig the unprivileged user may read, as a mounted ServiceAccount token would be.
  mkdirSync(join(work, "kube"))
  writeFileSync(join(work, "kube", "config"), readFileSync(kubeContext().adminKubeconfig), { mode: 0o444 })
  // Owned by root and not writable by anyone else: like COPY without --chown in the image.
  execFileSync("chmod", ["-R", "a-w,a+rX", app])
  receiver = await startReceiver()
}, 600_000)

afterAll(async () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await receiver?.close()
  if (work !== undefined) {
    execFileSync("chmod", ["-R", "u+w", work])
    rmSync(work, { recursive: true, force: true })
  }
})

describe("the production build, started like the container", () => {
  it("holds production dependencies only and no source tree", () => {
    // package-lock.json marks what only the dev dependencies need ("dev": true).
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>
    }
    const devOnly = Object.entries(lock.packages)
      .filter(([path, entry]) => path.startsWith("node_modules/") && entry.dev === true)
      .map(([path]) => path)
    expect(devOnly).toContain("node_modules/typescript")
    expect(devOnly.filter((path) => existsSync(join(app, path)))).toEqual([])
    const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      dependencies: Record<string, string>
    }
    for (const dep of Object.keys(packageJson.dependencies)) {
      expect(existsSync(join(app, "node_modules", dep)), `dependency ${dep} missing`).toBe(true)
    }
    for (const absent of ["src", "test", "tsconfig.json", "charts"])
      expect(existsSync(join(app, absent))).toBe(false)
    expect(existsSync(join(app, "dist", "main.js"))).toBe(true)
  })

  it("runs as nobody on a read-only root filesystem", async () => {
    const probe = collect(
      asContainer(
        [
          node,
          "-e",
          `const fs = require("node:fs")
           const attempt = (p) => { try { fs.writeFileSync(p, "x"); return "written" } catch (e) { return e.code } }
           console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), cwd: attempt("probe"), tmp: attempt("/tmp/vectordb-sync-probe") }))`,
        ],
        {},
      ),
    )
    expect((await probe.exit).code, probe.output()).toBe(0)
    const result = JSON.parse(probe.output().trim().split("\n").at(-1) ?? "{}")
    expect(result).toEqual({ uid: Number(NOBODY), gid: Number(NOBODY), cwd: "EROFS", tmp: "EROFS" })
  })

  it("answers /healthz and /readyz, syncs, and exits 0 on SIGTERM", async () => {
    const ns = await createNamespace("image-smoke")
    const healthPort = await freePort()
    const apiPort = await freePort()
    const child = asContainer([node, "dist/main.js"], {
      KUBECONFIG: join(work, "kube", "config"),
      INSTANCES_ENDPOINT: receiver.url,
      WATCH_RESOURCE_TYPES: "namespaces",
      DEBOUNCE_WINDOW_MS: "100",
      BATCH_FLUSH_INTERVAL_MS: "100",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
      API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
    })
    running.push(child)
    const { output, exit } = collect(child)
    const status = (path: string) =>
      fetch(`http://127.0.0.1:${healthPort}${path}`).then(
        (r) => r.status,
        () => 0,
      )
    await eventually(
      async () => (await status("/healthz")) === 200,
      () => `no /healthz; output:\n${output()}`,
    )
    await eventually(
      async () => (await status("/readyz")) === 200,
      () => `never ready; output:\n${output()}`,
    )
    await eventually(
      () => receiver.state.has(`_cluster/v1/Namespace/${ns}`),
      () => `namespace ${ns} not synced; output:\n${output()}`,
    )
    child.kill("SIGTERM")
    const result = await Promise.race([
      exit,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no exit after SIGTERM:\n${output()}`)), 30_000),
      ),
    ])
    expect(result, output()).toEqual({ code: 0, signal: null })
    await deleteNamespace(ns)
  })
})
