/**
 * A real Kubernetes control plane for the tests: etcd, kube-apiserver and kube-controller-manager,
 * built from Go modules (test/kube/build.sh) or taken from KUBEBUILDER_ASSETS, on free loopback
 * ports, with a fresh data dir and a fresh CA per instance.
 *
 * This is test tooling, deliberately plain Node: it runs in vitest's main process (global setup),
 * where an Effect runtime would buy nothing. Every child runs in its own process group and is
 * killed on stop(), on process exit, on SIGINT/SIGTERM/SIGHUP, and — should this process die
 * without running any handler (SIGKILL, OOM) — by a small shell watchdog that outlives it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { access, constants, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises"
import { request as httpRequest } from "node:http"
import { request as httpsRequest } from "node:https"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { checkOpenssl, makePki } from "./pki.js"

const run = promisify(execFile)

const BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager"] as const

/** Where the control-plane binaries come from. */
export interface Binaries {
  readonly dir: string
  readonly source: "KUBEBUILDER_ASSETS" | "test/kube/build.sh"
  readonly etcd: string
  readonly kubeApiServer: string
  readonly kubeControllerManager: string
}

const missingIn = async (dir: string): Promise<ReadonlyArray<string>> => {
  const missing: Array<string> = []
  for (const name of BINARIES) {
    try {
      await access(join(dir, name), constants.X_OK)
    } catch {
      missing.push(name)
    }
  }
  return missing
}

const binariesIn = (dir: string, source: Binaries["source"]): Binaries => ({
  dir,
  source,
  etcd: join(dir, "etcd"),
  kubeApiServer: join(dir, "kube-apiserver"),
  kubeControllerManager: join(dir, "kube-controller-manager"),
})

/**
 * KUBEBUILDER_ASSETS when it holds all three binaries (envtest's convention), otherwise whatever
 * test/kube/build.sh prints: the cached build, or a fresh Go build (minutes when cold). Never
 * "skip": without binaries the caller gets an error that says how to get them.
 */
export const resolveBinaries = async (): Promise<Binaries> => {
  const assets = process.env.KUBEBUILDER_ASSETS
  let assetsNote = "KUBEBUILDER_ASSETS is not set"
  if (assets !== undefined && assets !== "") {
    const missing = await missingIn(assets)
    if (missing.length === 0) return binariesIn(assets, "KUBEBUILDER_ASSETS")
    assetsNote = `KUBEBUILDER_ASSETS=${assets} lacks ${missing.join(", ")}`
  }

  const buildScript = fileURLToPath(new URL("./build.sh", import.meta.url))
  let buildOutput: string
  try {
    buildOutput = await new Promise<string>((resolvePromise, reject) => {
      // build.sh reports progress on stderr (a cold build takes minutes): let the user see it.
      const child = spawn("bash", [buildScript], { stdio: ["ignore", "pipe", "inherit"] })
      let stdout = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk
      })
      child.on("error", reject)
      // "close", not "exit": the process may exit before its stdout has been read to the end.
      child.on("close", (code, signal) =>
        code === 0 ? resolvePromise(stdout) : reject(new Error(`exited with ${signal ?? `code ${code}`}`)),
      )
    })
  } catch (cause) {
    throw new Error(
      `No Kubernetes control-plane binaries: ${assetsNote}, and ${buildScript} failed (see its output above). ` +
        "Either install Go (the version in test/kube/go.mod) and let build.sh build them, or set " +
        `KUBEBUILDER_ASSETS to a folder holding ${BINARIES.join(", ")}.`,
      { cause },
    )
  }
  const dir = buildOutput.trim().split("\n").at(-1) ?? ""
  const missing = dir === "" ? BINARIES : await missingIn(dir)
  if (missing.length > 0) {
    throw new Error(
      `${buildScript} printed "${dir}" but ${missing.join(", ")} is not there (${assetsNote}). ` +
        "Delete the cache folder and run build.sh again.",
    )
  }
  return binariesIn(resolve(dir), "test/kube/build.sh")
}

/** Picks distinct free TCP ports on 127.0.0.1 by binding to port 0 and releasing them together. */
const freePorts = async (count: number): Promise<ReadonlyArray<number>> => {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolvePromise, reject) => {
          const server = createServer()
          server.once("error", reject)
          server.listen(0, "127.0.0.1", () => resolvePromise(server))
        }),
    ),
  )
  const ports = servers.map((server) => {
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error("no TCP address")
    return address.port
  })
  await Promise.all(servers.map((server) => new Promise((r) => server.close(r))))
  return ports
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Last lines of a log file, for error messages that say why a component did not come up. */
const tail = (file: string, lines = 40): string => {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
  } catch {
    return "(no log)"
  }
}

/** One long-running binary, alone in its process group, logging to a file. */
class Component {
  private child: ChildProcess | undefined
  private exit: Promise<void> = Promise.resolve()
  private exitStatus: string | undefined

  constructor(
    readonly name: string,
    private readonly binary: string,
    private readonly args: ReadonlyArray<string>,
    readonly logFile: string,
    private readonly onSpawn: () => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** True from start() until the process has exited. */
  get running(): boolean {
    return this.child !== undefined && this.exitStatus === undefined
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`)
    const log = openSync(this.logFile, "a")
    try {
      writeFileSync(log, `\n==== ${new Date().toISOString()} ${this.binary} ${this.args.join(" ")}\n`)
      // detached: a new process group, so one kill(-pgid) reaches the binary and anything it forks.
      const child = spawn(this.binary, this.args, { detached: true, stdio: ["ignore", log, log] })
      this.child = child
      this.exitStatus = undefined
      this.exit = new Promise<void>((resolvePromise) => {
        child.once("error", (error) => {
          this.exitStatus = `failed to start: ${error.message}`
          resolvePromise()
        })
        child.once("exit", (code, signal) => {
          this.exitStatus = signal === null ? `exited with code ${code}` : `killed by ${signal}`
          resolvePromise()
        })
      })
      // Deliberately not unref()'d: a running component is a live resource, and stop() awaits its
      // 'exit' event, which an unref()'d child lets Node skip by exiting with an empty event loop.
    } finally {
      closeSync(log)
    }
    this.onSpawn()
  }

  /** Throws with the log tail if the process is gone: readiness waits call this on each poll. */
  assertRunning(): void {
    if (this.exitStatus !== undefined) {
      throw new Error(
        `${this.name} ${this.exitStatus}. Last lines of ${this.logFile}:\n${tail(this.logFile)}`,
      )
    }
  }

  failure(what: string): Error {
    return new Error(`${this.name}: ${what}. Last lines of ${this.logFile}:\n${tail(this.logFile)}`)
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs: number): Promise<void> {
    const pid = this.child?.pid
    if (pid === undefined || !this.running) return
    signalGroup(pid, "SIGTERM")
    // The grace timer is cleared once the process is gone, or it would hold vitest open for graceMs.
    let timer: NodeJS.Timeout | undefined
    const exited = await Promise.race([
      this.exit.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), graceMs)
      }),
    ])
    clearTimeout(timer)
    if (!exited) {
      signalGroup(pid, "SIGKILL")
      await this.exit
    }
    // Anything the binary forked into its group goes too.
    signalGroup(pid, "SIGKILL")
  }

  /** Synchronous last resort for process 'exit' handlers. */
  killNow(): void {
    const pid = this.child?.pid
    if (pid !== undefined) signalGroup(pid, "SIGKILL")
  }
}

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** True while any process of the group is alive. */
const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

// ---- exit and signal cleanup shared by all instances -------------------------------------------

/** Anything holding processes that must die with this one. */
interface Killable {
  killNow(): void
}

const live = new Set<Killable>()
const EXIT_SIGNALS: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM", "SIGHUP"]

const onExit = (): void => {
  for (const plane of live) plane.killNow()
}
const onSignal = (signal: NodeJS.Signals): void => {
  onExit()
  unregister()
  // Keep the signal's meaning: if nobody else handles it, die of it as we would have.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}
const register = (plane: Killable): void => {
  if (live.size === 0) {
    process.on("exit", onExit)
    for (const signal of EXIT_SIGNALS) process.on(signal, onSignal)
  }
  live.add(plane)
}
const unregister = (plane?: Killable): void => {
  if (plane !== undefined) live.delete(plane)
  if (plane === undefined || live.size === 0) {
    process.off("exit", onExit)
    for (const signal of EXIT_SIGNALS) process.off(signal, onSignal)
  }
}

// Kills the recorded process groups and removes the temp dir once the given pid is gone. It is the
// only guard that works when this Node process is SIGKILLed; stop() kills the watchdog itself.
const WATCHDOG = `
parent=$1 pgids=$2 dir=$3 keep=$4
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
for pgid in $(cat "$pgids" 2>/dev/null); do kill -KILL "-$pgid" 2>/dev/null; done
[ "$keep" = 1 ] || rm -rf -- "$dir"
`

// ---- the control plane ---------------------------------------------------------------------------

export interface ControlPlaneOptions {
  /** CN of the unprivileged client certificate (no groups). */
  readonly userName?: string
  /** Extra kube-apiserver flags, appended after the defaults (the last occurrence of a flag wins). */
  readonly apiServerFlags?: ReadonlyArray<string>
  /** How long each component may take to become ready. Default 120 s: a loaded 2-core box is slow. */
  readonly readyTimeoutMs?: number
  /** Keep the temp dir (logs, certs, etcd data) after stop() for debugging. Default: KUBE_TEST_KEEP_DIR=1. */
  readonly keepDir?: boolean
}

/** Milliseconds from start() until each component was ready. */
export interface StartTimings {
  readonly binariesMs: number
  readonly pkiMs: number
  readonly etcdReadyMs: number
  readonly apiServerReadyMs: number
  /** kube-controller-manager healthy and its serviceaccount controller has made default/default. */
  readonly controllerManagerReadyMs: number
  readonly totalMs: number
}

export interface ControlPlaneInfo {
  /** https://127.0.0.1:<port>; stays the same across restartApiServer(). */
  readonly server: string
  /** http://127.0.0.1:<port>, etcd's client URL (with its JSON gRPC gateway under /v3/). */
  readonly etcdUrl: string
  readonly caFile: string
  readonly adminKubeconfig: string
  readonly adminCertFile: string
  readonly adminKeyFile: string
  readonly userKubeconfig: string
  readonly userCertFile: string
  readonly userKeyFile: string
  readonly userName: string
  /** e.g. "v1.36.3", as reported by kube-apiserver --version. */
  readonly kubernetesVersion: string
  /** Temp dir holding certs, kubeconfigs, etcd data and the components' logs (<name>.log). */
  readonly dir: string
  readonly binariesDir: string
}

const kubeconfig = (server: string, caPem: string, user: string, certPem: string, keyPem: string): string => {
  const b64 = (text: string) => Buffer.from(text).toString("base64")
  // YAML by hand: every value is a URL, a plain name or base64, none needs quoting.
  return `apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: ${server}
      certificate-authority-data: ${b64(caPem)}
users:
  - name: ${user}
    user:
      client-certificate-data: ${b64(certPem)}
      client-key-data: ${b64(keyPem)}
contexts:
  - name: ${user}@test
    context:
      cluster: test
      user: ${user}
current-context: ${user}@test
`
}

interface TlsMaterial {
  readonly ca: string
  readonly cert: string
  readonly key: string
}

interface HttpResult {
  readonly status: number
  readonly body: string
}

const httpsGet = (port: number, path: string, tls: Partial<TlsMaterial>, timeoutMs = 5_000) =>
  new Promise<HttpResult>((resolvePromise, reject) => {
    const req = httpsRequest(
      // agent: false: no pooled keep-alive sockets to go stale across an apiserver restart.
      { host: "127.0.0.1", port, path, method: "GET", ...tls, agent: false, timeout: timeoutMs },
      (res) => {
        let body = ""
        res.setEncoding("utf8").on("data", (chunk: string) => {
          body += chunk
        })
        res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }))
        res.on("error", reject)
      },
    )
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on("error", reject)
    req.end()
  })

const etcdPost = (url: string, path: string, body: unknown, timeoutMs = 30_000) =>
  new Promise<HttpResult>((resolvePromise, reject) => {
    const payload = JSON.stringify(body)
    const req = httpRequest(
      `${url}${path}`,
      {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk
        })
        res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, body: text }))
        res.on("error", reject)
      },
    )
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on("error", reject)
    req.end(payload)
  })

/** Controllers the tests rely on; the full default set would only burn the 2 CPUs. */
const CONTROLLERS = [
  "namespace-controller", // namespace deletion
  "garbage-collector-controller", // ownerReference cascades
  "serviceaccount-controller", // a "default" ServiceAccount in every namespace
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller", // kube-root-ca.crt ConfigMap in every namespace
  "clusterrole-aggregation-controller", // fills the aggregated admin/edit/view ClusterRoles
]

export class ControlPlane {
  private constructor(
    readonly info: ControlPlaneInfo,
    private readonly etcd: Component,
    private readonly apiServer: Component,
    private readonly controllerManager: Component,
    private readonly watchdog: ChildProcess,
    private readonly apiServerPort: number,
    private readonly controllerManagerPort: number,
    private readonly adminTls: TlsMaterial,
    private readonly readyTimeoutMs: number,
    private readonly keepDir: boolean,
    readonly timings: StartTimings,
  ) {}

  /**
   * Starts etcd, kube-apiserver and kube-controller-manager and resolves once all three are ready.
   * On failure everything started so far is stopped again and the error carries the log tail of
   * the component that failed.
   */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const t0 = performance.now()
    const since = () => Math.round(performance.now() - t0)
    const readyTimeoutMs = options.readyTimeoutMs ?? 120_000
    const keepDir = options.keepDir ?? process.env.KUBE_TEST_KEEP_DIR === "1"
    const userName = options.userName ?? "unprivileged-user"

    const [binaries] = await Promise.all([resolveBinaries(), checkOpenssl()])
    const binariesMs = since()
    const { stdout: versionOut } = await run(binaries.kubeApiServer, ["--version"])
    const kubernetesVersion = versionOut.trim().replace(/^Kubernetes\s+/, "")

    const dir = await mkdtemp(join(tmpdir(), "k8s-vectordb-sync-kube-"))
    const pgidsFile = join(dir, "pgids")
    const components: Array<Component> = []
    const recordPgids = () =>
      writeFileSync(
        pgidsFile,
        components.flatMap((c) => (c.pid === undefined ? [] : [String(c.pid)])).join("\n"),
      )

    // The watchdog starts before any component, so there is no window in which a SIGKILL of this
    // process would orphan one.
    const watchdog = spawn(
      "sh",
      ["-c", WATCHDOG, "watchdog", String(process.pid), pgidsFile, dir, keepDir ? "1" : "0"],
      {
        detached: true,
        stdio: "ignore",
      },
    )
    watchdog.unref()

    // A partially started plane must be cleaned up by the same handlers as a running one.
    const partial: Killable = {
      killNow: () => {
        for (const c of components) c.killNow()
        if (watchdog.pid !== undefined) signalGroup(watchdog.pid, "SIGKILL")
        if (!keepDir) rmSync(dir, { recursive: true, force: true })
      },
    }
    register(partial)

    try {
      const pki = await makePki(dir, userName)
      const pkiMs = since()
      const [etcdClientPort, etcdPeerPort, apiServerPort, controllerManagerPort] = (await freePorts(4)) as [
        number,
        number,
        number,
        number,
      ]
      const etcdUrl = `http://127.0.0.1:${etcdClientPort}`
      const server = `https://127.0.0.1:${apiServerPort}`
      const [caPem, adminCert, adminKey, userCert, userKey, kcmCert, kcmKey] = (await Promise.all(
        [
          pki.caFile,
          pki.admin.certFile,
          pki.admin.keyFile,
          pki.user.certFile,
          pki.user.keyFile,
          pki.controllerManager.certFile,
          pki.controllerManager.keyFile,
        ].map((file) => readFile(file, "utf8")),
      )) as [string, string, string, string, string, string, string]
      const adminKubeconfig = join(dir, "admin.kubeconfig")
      const userKubeconfig = join(dir, "user.kubeconfig")
      const controllerManagerKubeconfig = join(dir, "kube-controller-manager.kubeconfig")
      await Promise.all([
        writeFile(adminKubeconfig, kubeconfig(server, caPem, "admin", adminCert, adminKey), { mode: 0o600 }),
        writeFile(userKubeconfig, kubeconfig(server, caPem, userName, userCert, userKey), { mode: 0o600 }),
        writeFile(
          controllerManagerKubeconfig,
          kubeconfig(server, caPem, "kube-controller-manager", kcmCert, kcmKey),
          { mode: 0o600 },
        ),
      ])

      const component = (name: string, binary: string, args: ReadonlyArray<string>) => {
        const c = new Component(name, binary, args, join(dir, `${name}.log`), recordPgids)
        components.push(c)
        return c
      }
      const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`
      const etcd = component("etcd", binaries.etcd, [
        "--name=test",
        `--data-dir=${join(dir, "etcd-data")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${etcdPeerUrl}`,
        `--initial-advertise-peer-urls=${etcdPeerUrl}`,
        `--initial-cluster=test=${etcdPeerUrl}`,
        "--initial-cluster-state=new",
        // Durability is worthless for a throwaway store; fsync on a shared disk costs seconds.
        "--unsafe-no-fsync",
        "--log-level=warn",
      ])
      const apiServer = component("kube-apiserver", binaries.kubeApiServer, [
        // No default route on these machines: without an explicit address the apiserver cannot pick one.
        "--advertise-address=127.0.0.1",
        "--bind-address=127.0.0.1",
        `--secure-port=${apiServerPort}`,
        `--etcd-servers=${etcdUrl}`,
        // Only the tests compact etcd (compactEtcd/expireResourceVersions), so a 410 never comes by chance.
        "--etcd-compaction-interval=0",
        // Our CA signs the serving cert, so clients verify it with the same caFile as the client certs.
        `--tls-cert-file=${pki.serving.certFile}`,
        `--tls-private-key-file=${pki.serving.keyFile}`,
        // Ignored while the TLS files are given; keeps the default /var/run/kubernetes out of reach.
        `--cert-dir=${join(dir, "kube-apiserver-certs")}`,
        `--client-ca-file=${pki.caFile}`,
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${pki.serviceAccountPublicKeyFile}`,
        `--service-account-signing-key-file=${pki.serviceAccountKeyFile}`,
        // Without it SIGTERM leaves open watches (kube-controller-manager's) to the 60 s request
        // timeout and a restart takes ~20 s; with it they are closed within 2 s and a stop takes ~1 s.
        "--shutdown-watch-termination-grace-period=2s",
        ...(options.apiServerFlags ?? []),
      ])
      const controllerManager = component("kube-controller-manager", binaries.kubeControllerManager, [
        `--kubeconfig=${controllerManagerKubeconfig}`,
        `--authentication-kubeconfig=${controllerManagerKubeconfig}`,
        `--authorization-kubeconfig=${controllerManagerKubeconfig}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${controllerManagerPort}`,
        `--tls-cert-file=${pki.serving.certFile}`,
        `--tls-private-key-file=${pki.serving.keyFile}`,
        "--leader-elect=false",
        `--controllers=${CONTROLLERS.join(",")}`,
        `--service-account-private-key-file=${pki.serviceAccountKeyFile}`,
        `--root-ca-file=${pki.caFile}`,
      ])

      const adminTls: TlsMaterial = { ca: caPem, cert: adminCert, key: adminKey }

      etcd.start()
      await waitUntil(etcd, "etcd /health", readyTimeoutMs, async () => {
        const res = await new Promise<number>((resolvePromise, reject) => {
          const req = httpRequest(`${etcdUrl}/health`, { agent: false, timeout: 2_000 }, (r) => {
            r.resume()
            resolvePromise(r.statusCode ?? 0)
          })
          req.on("timeout", () => req.destroy(new Error("timeout")))
          req.on("error", reject)
          req.end()
        })
        return res === 200
      })
      const etcdReadyMs = since()

      apiServer.start()
      await waitForApiServer(apiServer, apiServerPort, adminTls, readyTimeoutMs)
      const apiServerReadyMs = since()

      controllerManager.start()
      await waitForControllerManager(controllerManager, controllerManagerPort, caPem, readyTimeoutMs)
      // Healthy is not working: wait for a controller's first visible effect.
      await waitUntil(controllerManager, "ServiceAccount default/default", readyTimeoutMs, async () => {
        const res = await httpsGet(
          apiServerPort,
          "/api/v1/namespaces/default/serviceaccounts/default",
          adminTls,
        )
        return res.status === 200
      })
      const controllerManagerReadyMs = since()

      const info: ControlPlaneInfo = {
        server,
        etcdUrl,
        caFile: pki.caFile,
        adminKubeconfig,
        adminCertFile: pki.admin.certFile,
        adminKeyFile: pki.admin.keyFile,
        userKubeconfig,
        userCertFile: pki.user.certFile,
        userKeyFile: pki.user.keyFile,
        userName,
        kubernetesVersion,
        dir,
        binariesDir: binaries.dir,
      }
      const plane = new ControlPlane(
        info,
        etcd,
        apiServer,
        controllerManager,
        watchdog,
        apiServerPort,
        controllerManagerPort,
        adminTls,
        readyTimeoutMs,
        keepDir,
        {
          binariesMs,
          pkiMs,
          etcdReadyMs,
          apiServerReadyMs,
          controllerManagerReadyMs,
          totalMs: since(),
        },
      )
      unregister(partial)
      register(plane)
      return plane
    } catch (error) {
      for (const c of [...components].reverse()) await c.stop(2_000)
      partial.killNow()
      unregister(partial)
      throw error
    }
  }

  /** Stops kube-apiserver (SIGTERM, its normal graceful shutdown). etcd keeps running. */
  async stopApiServer(): Promise<void> {
    await this.apiServer.stop(15_000)
  }

  /**
   * Starts kube-apiserver again on the same port and etcd, then restarts kube-controller-manager;
   * resolves when both are ready. A no-op if kube-apiserver is running.
   */
  async startApiServer(): Promise<void> {
    if (this.apiServer.running) return
    this.apiServer.start()
    await waitForApiServer(this.apiServer, this.apiServerPort, this.adminTls, this.readyTimeoutMs)
    // kube-controller-manager's informers back off exponentially (towards 30 s) while the apiserver
    // is away, so after an outage of a few seconds its controllers stayed blind for up to ~20 s
    // (measured). A fresh process lists at once, so it is restarted too (~0.3 s).
    await this.controllerManager.stop(5_000)
    this.controllerManager.start()
    await waitForControllerManager(
      this.controllerManager,
      this.controllerManagerPort,
      this.adminTls.ca,
      this.readyTimeoutMs,
    )
  }

  async restartApiServer(): Promise<void> {
    await this.stopApiServer()
    await this.startApiServer()
  }

  get apiServerRunning(): boolean {
    return this.apiServer.running
  }

  /** etcd's current revision (what kube-apiserver calls the resourceVersion of the whole store). */
  async etcdRevision(): Promise<number> {
    // A range over a key the apiserver never writes: only the response header matters.
    const res = await etcdPost(this.info.etcdUrl, "/v3/kv/range", {
      key: Buffer.from("/k8s-vectordb-sync-test/probe").toString("base64"),
    })
    if (res.status !== 200) throw new Error(`etcd range: HTTP ${res.status}: ${res.body}`)
    const revision = Number((JSON.parse(res.body) as { header?: { revision?: string } }).header?.revision)
    if (!Number.isSafeInteger(revision) || revision <= 0)
      throw new Error(`etcd range: no revision in ${res.body}`)
    return revision
  }

  /** Compacts etcd at its current revision (physically, before returning); returns that revision. */
  async compactEtcd(): Promise<number> {
    const revision = await this.etcdRevision()
    const res = await etcdPost(this.info.etcdUrl, "/v3/kv/compaction", {
      revision: String(revision),
      physical: true,
    })
    // Compacting at an already compacted revision is the only error worth tolerating.
    if (res.status !== 200 && !res.body.includes("required revision has been compacted")) {
      throw new Error(`etcd compaction at ${revision}: HTTP ${res.status}: ${res.body}`)
    }
    return revision
  }

  /**
   * Makes every resourceVersion handed out before this call too old to watch from: the next watch
   * (or a resumed one) from such a version gets 410 Gone / reason Expired.
   *
   * Two things remember history, so both are cleared. etcd: two writes outside /registry (invisible
   * to Kubernetes) move its revision R at least two past any earlier resourceVersion v, and a
   * compaction at R then removes revision v+1, where a watch from v would start. The watch cache
   * of kube-apiserver: a restart rebuilds it from a fresh list, so it knows nothing older either.
   * Open watches are closed by the restart. Returns the compacted revision.
   */
  async expireResourceVersions(): Promise<number> {
    const key = Buffer.from("/k8s-vectordb-sync-test/expire").toString("base64")
    for (const n of [1, 2]) {
      const value = Buffer.from(String(n)).toString("base64")
      const res = await etcdPost(this.info.etcdUrl, "/v3/kv/put", { key, value })
      if (res.status !== 200) throw new Error(`etcd put: HTTP ${res.status}: ${res.body}`)
    }
    const revision = await this.compactEtcd()
    await this.restartApiServer()
    return revision
  }

  /** Pids of the components' process groups (for leak checks). */
  get processGroups(): ReadonlyArray<number> {
    return [this.etcd, this.apiServer, this.controllerManager, this.watchdog].flatMap((c) =>
      c.pid === undefined ? [] : [c.pid],
    )
  }

  /**
   * Stops everything (controller manager, apiserver, etcd; each SIGTERM then SIGKILL), removes the
   * temp dir, and throws if any process of this control plane is still alive afterwards.
   */
  async stop(): Promise<void> {
    const groups = this.processGroups
    await this.controllerManager.stop(5_000)
    await this.apiServer.stop(15_000)
    await this.etcd.stop(10_000)
    if (this.watchdog.pid !== undefined) signalGroup(this.watchdog.pid, "SIGKILL")
    unregister(this)
    const leftovers = await survivors(groups, this.info.dir)
    if (!this.keepDir) rmSync(this.info.dir, { recursive: true, force: true })
    if (leftovers.length > 0) {
      throw new Error(`control plane processes still alive after stop(): ${leftovers.join("; ")}`)
    }
  }

  /** Synchronous SIGKILL of everything, for exit handlers. */
  killNow(): void {
    for (const c of [this.controllerManager, this.apiServer, this.etcd]) c.killNow()
    if (this.watchdog.pid !== undefined) signalGroup(this.watchdog.pid, "SIGKILL")
    if (!this.keepDir && existsSync(this.info.dir)) rmSync(this.info.dir, { recursive: true, force: true })
  }
}

/**
 * Processes that outlived stop(): any of our process groups, and — to catch anything that escaped
 * its group — any process whose command line mentions our temp dir (every component's does).
 */
const survivors = async (groups: ReadonlyArray<number>, dir: string): Promise<ReadonlyArray<string>> => {
  // A killed process can take a moment to be reaped.
  for (let i = 0; i < 20 && groups.some(groupAlive); i++) await sleep(100)
  const found = groups.filter(groupAlive).map((pgid) => `process group ${pgid}`)
  if (process.platform === "linux") {
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
      try {
        const cmdline = readFileSync(join("/proc", entry, "cmdline"), "utf8").replaceAll("\0", " ")
        if (cmdline.includes(dir)) found.push(`pid ${entry}: ${cmdline.slice(0, 200)}`)
      } catch {
        // The process ended while we looked.
      }
    }
  }
  return found
}

/** Polls `probe` until it returns true; fails early with the log tail if the component exits. */
const waitUntil = async (
  component: Component,
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  let last = "no answer yet"
  for (;;) {
    component.assertRunning()
    try {
      if (await probe()) return
      last = "not ready"
    } catch (error) {
      last = error instanceof Error ? error.message : String(error)
    }
    if (performance.now() > deadline) {
      throw component.failure(`${what} not ready after ${timeoutMs} ms (last: ${last})`)
    }
    await sleep(200)
  }
}

const waitForControllerManager = (component: Component, port: number, ca: string, timeoutMs: number) =>
  waitUntil(component, "kube-controller-manager /healthz", timeoutMs, async () => {
    const res = await httpsGet(port, "/healthz", { ca })
    return res.status === 200
  })

const waitForApiServer = (component: Component, port: number, tls: TlsMaterial, timeoutMs: number) =>
  waitUntil(component, "kube-apiserver /readyz", timeoutMs, async () => {
    const res = await httpsGet(port, "/readyz", tls)
    return res.status === 200
  })
