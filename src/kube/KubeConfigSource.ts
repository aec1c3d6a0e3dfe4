/**
 * Where the controller's Kubernetes credentials come from. `@kubernetes/client-node`'s
 * `KubeConfig` parses kubeconfig files and runs the authenticators (token files, exec plugins,
 * OIDC, cloud providers); this module decides which configuration applies and checks that it is
 * usable before anything is sent.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Cluster, Context as KubeContext, User } from "@kubernetes/client-node"
// The module that holds `KubeConfig`, not the package's index, which re-exports the whole client
// (generated API, informers, exec and port-forward over WebSockets): a bundle keeps every module
// behind it that has effects at load time, code the controller never runs.
import { KubeConfig } from "@kubernetes/client-node/dist/config.js"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { KubeConfigError } from "./KubeError.js"
import { identityOf, type KubeIdentity } from "./KubeIdentity.js"
import { withTokenFiles } from "./KubeTokenFiles.js"

export interface KubeConfigSourceShape {
  /** Loaded and validated; treat as read-only (client-node's authenticators keep their caches in it). */
  readonly kubeConfig: KubeConfig
  /** Human-readable origin for logs, e.g. `in-cluster service account` or `kubeconfig /home/me/.kube/config`. */
  readonly origin: string
  readonly server: string
  readonly identity: KubeIdentity
}

export interface LoadOptions {
  /** Use this context instead of the file's `current-context`. */
  readonly context?: string
}

export interface InClusterOptions {
  /**
   * Prefix for the service-account folder (`/var/run/secrets/kubernetes.io/serviceaccount`);
   * the default is the real one. Tests point it at a temporary folder.
   */
  readonly root?: string
}

export class KubeConfigSource extends Context.Tag("k8s-vectordb-sync/KubeConfigSource")<
  KubeConfigSource,
  KubeConfigSourceShape
>() {
  static readonly layerFromFile = (
    file: string,
    options?: LoadOptions,
  ): Layer.Layer<KubeConfigSource, KubeConfigError> =>
    Layer.effect(KubeConfigSource, fromFiles([file], options))
  static readonly layerFromDefault: Layer.Layer<KubeConfigSource, KubeConfigError> = Layer.effect(
    KubeConfigSource,
    Effect.suspend(() => fromDefault()),
  )
}

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

const attempt = <A>(what: string, f: () => A): Effect.Effect<A, KubeConfigError> =>
  Effect.try({
    try: f,
    catch: (cause) => new KubeConfigError({ message: `${what}: ${errorMessage(cause)}`, cause }),
  })

const errorMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Validates a `KubeConfig` built elsewhere and wraps it as a source. */
export const fromKubeConfig = (
  kubeConfig: KubeConfig,
  origin: string,
  options?: LoadOptions,
): Effect.Effect<KubeConfigSourceShape, KubeConfigError> =>
  Effect.gen(function* () {
    if (options?.context !== undefined) {
      if (kubeConfig.getContextObject(options.context) === null) {
        return yield* new KubeConfigError({ message: `${origin}: context "${options.context}" not found` })
      }
      kubeConfig.setCurrentContext(options.context)
    }
    const contextName = kubeConfig.getCurrentContext()
    if (!contextName) {
      return yield* new KubeConfigError({ message: `${origin}: no current-context is set` })
    }
    const context = kubeConfig.getContextObject(contextName)
    if (context === null) {
      return yield* new KubeConfigError({ message: `${origin}: current-context "${contextName}" not found` })
    }
    const cluster = kubeConfig.getCluster(context.cluster)
    if (cluster === null) {
      return yield* new KubeConfigError({
        message: `${origin}: cluster "${context.cluster}" of context "${contextName}" not found`,
      })
    }
    const user = kubeConfig.getUser(context.user)
    if (user === null) {
      return yield* new KubeConfigError({
        message: `${origin}: user "${context.user}" of context "${contextName}" not found`,
      })
    }
    const server = yield* attempt(`${origin}: cluster "${cluster.name}" has an invalid server URL`, () => {
      const url = new URL(cluster.server)
      if (url.protocol !== "https:" && url.protocol !== "http:")
        throw new Error(`unsupported scheme ${url.protocol}`)
      // Paths are appended to this; a trailing slash would double it.
      return cluster.server.replace(/\/+$/, "")
    })
    return { kubeConfig, origin, server, identity: identityOf(context, cluster, user) }
  })

/**
 * Loads kubeconfig files the way kubectl does with a `KUBECONFIG` list: the first file that
 * defines a cluster, user or context name wins, the first `current-context` wins, missing files
 * are skipped (but at least one must exist). Relative certificate paths resolve against their file.
 */
export const fromFiles = (
  files: ReadonlyArray<string>,
  options?: LoadOptions,
): Effect.Effect<KubeConfigSourceShape, KubeConfigError> =>
  Effect.gen(function* () {
    const existing = files.filter((file) => file !== "" && fs.existsSync(file))
    const origin = `kubeconfig ${files.join(path.delimiter)}`
    if (existing.length === 0) {
      return yield* new KubeConfigError({ message: `${origin}: file not found` })
    }
    const clusters: Array<Cluster> = []
    const users: Array<User> = []
    const contexts: Array<KubeContext> = []
    let currentContext: string | undefined
    for (const file of existing) {
      const one = new KubeConfig()
      yield* attempt(`kubeconfig ${file}`, () => {
        one.loadFromFile(file)
        withTokenFiles(one, fs.readFileSync(file, "utf8"), path.dirname(file))
      })
      for (const c of one.getClusters()) if (!clusters.some((x) => x.name === c.name)) clusters.push(c)
      for (const u of one.getUsers()) if (!users.some((x) => x.name === u.name)) users.push(u)
      for (const c of one.getContexts()) if (!contexts.some((x) => x.name === c.name)) contexts.push(c)
      if (!currentContext) currentContext = one.getCurrentContext() || undefined
    }
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromOptions({ clusters, users, contexts, currentContext })
    return yield* fromKubeConfig(kubeConfig, origin, options)
  })

/** Loads a kubeconfig document held in memory. Relative file references resolve against the working directory. */
export const fromString = (
  yaml: string,
  options?: LoadOptions,
): Effect.Effect<KubeConfigSourceShape, KubeConfigError> =>
  Effect.gen(function* () {
    const kubeConfig = new KubeConfig()
    yield* attempt("kubeconfig (string)", () => {
      kubeConfig.loadFromString(yaml)
      withTokenFiles(kubeConfig, yaml, process.cwd())
    })
    return yield* fromKubeConfig(kubeConfig, "kubeconfig (string)", options)
  })

const inClusterEnv = Config.all({
  host: Config.string("KUBERNETES_SERVICE_HOST"),
  port: Config.string("KUBERNETES_SERVICE_PORT"),
})

/**
 * The pod's service account, as client-go's `rest.InClusterConfig`: the API server from
 * `KUBERNETES_SERVICE_HOST`/`_PORT`, the CA and namespace from the mounted folder, and the token
 * through client-node's token-file authenticator, which re-reads the projected token (kubelet
 * rotates it) at most a minute after it changes.
 */
export const inCluster = (
  options?: InClusterOptions,
): Effect.Effect<KubeConfigSourceShape, KubeConfigError> =>
  Effect.gen(function* () {
    const dir = path.join(options?.root ?? "/", serviceAccountDir)
    const env = yield* inClusterEnv.pipe(
      Effect.mapError(
        (cause) =>
          new KubeConfigError({
            message: "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set",
            cause,
          }),
      ),
    )
    const tokenFile = path.join(dir, "token")
    if (!fs.existsSync(tokenFile)) {
      return yield* new KubeConfigError({
        message: `in-cluster: service account token ${tokenFile} not found`,
      })
    }
    const host = env.host.includes(":") && !env.host.startsWith("[") ? `[${env.host}]` : env.host
    const namespaceFile = path.join(dir, "namespace")
    const namespace = fs.existsSync(namespaceFile) ? fs.readFileSync(namespaceFile, "utf8").trim() : undefined
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromOptions({
      clusters: [
        {
          name: "in-cluster",
          server: `https://${host}:${env.port}`,
          caFile: path.join(dir, "ca.crt"),
          skipTLSVerify: false,
        },
      ],
      users: [{ name: "service-account", authProvider: { name: "tokenFile", config: { tokenFile } } }],
      contexts: [
        {
          name: "in-cluster",
          cluster: "in-cluster",
          user: "service-account",
          ...(namespace ? { namespace } : {}),
        },
      ],
      currentContext: "in-cluster",
    })
    return yield* fromKubeConfig(kubeConfig, "in-cluster service account")
  })

const isInCluster = (root: string | undefined): Effect.Effect<boolean> =>
  inClusterEnv.pipe(
    Effect.map(() => fs.existsSync(path.join(root ?? "/", serviceAccountDir, "token"))),
    Effect.orElseSucceed(() => false),
  )

/**
 * The usual rules, in controller-runtime's order: an explicit `KUBECONFIG` (a path list) first,
 * then the pod's service account, then `~/.kube/config`. Unlike client-node's `loadFromDefault`,
 * this never falls back to an unauthenticated `http://localhost:8080`: no configuration is an error.
 */
export const fromDefault = (
  options?: LoadOptions & InClusterOptions,
): Effect.Effect<KubeConfigSourceShape, KubeConfigError> =>
  Effect.gen(function* () {
    const kubeconfigEnv: Option.Option<string> = yield* Config.option(Config.string("KUBECONFIG")).pipe(
      Effect.orElseSucceed(() => Option.none<string>()),
    )
    const paths = kubeconfigEnv.pipe(
      Option.map((v) => v.split(path.delimiter).filter((p) => p !== "")),
      Option.filter((ps) => ps.length > 0),
    )
    if (Option.isSome(paths)) return yield* fromFiles(paths.value, options)
    if (yield* isInCluster(options?.root)) return yield* inCluster(options)
    const home = yield* Config.option(Config.string("HOME")).pipe(
      Effect.map(Option.getOrElse(() => os.homedir())),
      Effect.orElseSucceed(() => os.homedir()),
    )
    const homeConfig = path.join(home, ".kube", "config")
    if (fs.existsSync(homeConfig)) return yield* fromFiles([homeConfig], options)
    return yield* new KubeConfigError({
      message: `no Kubernetes configuration: KUBECONFIG is not set, not running in a pod (no service account), and ${homeConfig} does not exist`,
    })
  })
