/**
 * The container image without a container engine: the runtime stage of the Dockerfile rebuilt on
 * the machine and started the way Kubernetes would start it with the chart's securityContext. What
 * the image declares is read from the Dockerfile (test/support/dockerfile.ts), not restated here:
 *
 * - The image's only file: what the runtime stage copies from the build stage, i.e. the bundle
 *   `npm run bundle` makes, written alone into a fresh folder. No node_modules, no src/, no test/.
 * - Started as the Dockerfile's numeric USER (setpriv: that uid/gid, no supplementary groups,
 *   no_new_privs) inside a private mount namespace whose root filesystem is remounted read-only
 *   (readOnlyRootFilesystem: true), with that folder as working directory and HOME pointing nowhere,
 *   running the exec-form ENTRYPOINT as written, on the image's Node.js 24 with its ENV.
 * - It answers /healthz and /readyz, syncs to a receiver, and exits 0 on SIGTERM (which only reaches
 *   node because the ENTRYPOINT execs it directly); also through a kubeconfig's `proxy-url`, the
 *   one transport (undici's ProxyAgent) the other tests do not run.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { once } from "node:events"
import {
  chmodSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import { type AddressInfo, connect, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parse, stringify } from "yaml"
import { createNamespace, deleteNamespace, kubeContext } from "../kube/harness.js"
import { eventually } from "../support/controller.js"
import { imageBundle, imageNode, runtimeStage } from "../support/dockerfile.js"
import { freePort } from "../support/ports.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const root = resolve(".")
const image = runtimeStage(readFileSync(join(root, "Dockerfile"), "utf8"))

/** The image's one file: the bundle script's output, checked to be what the runtime stage copies. */
const bundleFile = imageBundle(image)

/** The image's WORKDIR: `npm run bundle` with its output redirected to where the runtime stage's one COPY puts it. */
const bundleInto = (app: string): void => {
  const { script, outfile, destination } = bundleFile
  execFileSync("sh", ["-c", script.replace(`--outfile=${outfile}`, `--outfile=${join(app, destination)}`)], {
    cwd: root,
    env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH ?? ""}` },
    stdio: "inherit",
  })
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
      `mount -o remount,bind,ro / && exec setpriv --reuid=${image.uid} --regid=${image.gid} --clear-groups --no-new-privs -- "$@"`,
      "sh",
      ...command,
    ],
    {
      cwd: app,
      // The runtime's node first on PATH, as in the node image: the ENTRYPOINT names it bare.
      // The image's ENV under the test's own.
      env: { PATH: `${join(work, "bin")}:/usr/bin:/bin`, HOME: "/nonexistent", ...image.env, ...env },
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
  work = mkdtempSync(join(tmpdir(), "vectordb-sync-image-"))
  chmodSync(work, 0o755)
  app = join(work, "app")
  mkdirSync(app)
  // The image's /app: the bundle, nothing else.
  bundleInto(app)
  // The image's Node.js (24, whatever runs the tests; the ENTRYPOINT may pass flags only it knows),
  // reachable by nobody (the cache it sits in may be under /root).
  const runtime = imageNode()
  mkdirSync(join(work, "bin"))
  node = join(work, "bin", "node")
  try {
    linkSync(runtime, node)
  } catch {
    copyFileSync(runtime, node)
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

/**
 * Runs the ENTRYPOINT as the container would with `kubeconfig`: it answers /healthz and /readyz,
 * syncs a fresh namespace to the receiver, and exits 0 on SIGTERM.
 */
const syncsAndStops = async (kubeconfig: string): Promise<void> => {
  const ns = await createNamespace("image-smoke")
  const healthPort = await freePort()
  const apiPort = await freePort()
  const child = asContainer(image.entrypoint, {
    KUBECONFIG: kubeconfig,
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
}

describe("the production build, started like the container", () => {
  it("holds the bundle only: no node_modules, no source tree", () => {
    expect(readdirSync(app)).toEqual([bundleFile.destination])
    // Dev-only code (the compiler, the test runner) is not in it.
    const bundle = readFileSync(join(app, bundleFile.destination), "utf8")
    expect(bundle).not.toContain("vitest")
    expect(bundle).not.toContain("ts.createProgram")
    // Nor production code the controller never runs (src/bundle.ts): client-node's generated API
    // models (each declares an `attributeTypeMap`), undici's fetch and its mock agents, fast-check
    // (its runner's `numRuns`).
    expect(bundle).not.toContain("attributeTypeMap")
    expect(bundle).not.toContain("fetch failed")
    expect(bundle).not.toContain("MockNotMatchedError")
    expect(bundle).not.toContain("numRuns")
  })

  it("runs as the image's non-root USER on a read-only root filesystem", async () => {
    expect(image.uid).toBeGreaterThan(0)
    expect(image.gid).toBeGreaterThan(0)
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
    expect(result).toEqual({ uid: image.uid, gid: image.gid, cwd: "EROFS", tmp: "EROFS" })
  })

  it("its ENTRYPOINT answers /healthz and /readyz, syncs, and exits 0 on SIGTERM", async () => {
    await syncsAndStops(join(work, "kube", "config"))
  })

  it("reaches the API server through a kubeconfig's proxy-url (HTTP CONNECT)", async () => {
    const tunnels: Array<string> = []
    const proxy = createServer()
    proxy.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? "")
      const [host, port] = (req.url ?? "").split(":")
      const upstream = connect(Number(port), host ?? "", () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
        upstream.write(head)
        upstream.pipe(client)
        client.pipe(upstream)
      })
      upstream.on("error", () => client.destroy())
      client.on("error", () => upstream.destroy())
    })
    proxy.listen(0, "127.0.0.1")
    await once(proxy, "listening")
    try {
      const config = parse(readFileSync(join(work, "kube", "config"), "utf8"))
      const { port } = proxy.address() as AddressInfo
      for (const { cluster } of config.clusters) cluster["proxy-url"] = `http://127.0.0.1:${port}`
      const proxied = join(work, "kube", "proxied-config")
      writeFileSync(proxied, stringify(config), { mode: 0o444 })
      await syncsAndStops(proxied)
      const server = new URL(config.clusters[0].cluster.server as string)
      expect(tunnels.length).toBeGreaterThan(0)
      expect(new Set(tunnels)).toEqual(new Set([server.host]))
    } finally {
      proxy.closeAllConnections()
      proxy.close()
    }
  })
})
