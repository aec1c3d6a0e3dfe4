/**
 * What integration tests use to reach the shared control plane started by test/kube/globalSetup.ts:
 * its connection details, the disruptive operations (restart/stop/start kube-apiserver, compact
 * etcd, expire resourceVersions) through the global setup's control server, and small HTTPS
 * helpers for test setup that are independent of the product's Kubernetes client.
 *
 * Tests isolate themselves in their own namespaces (createNamespace). The integration project runs
 * its files one at a time, so a restart in one file never hits another file's requests.
 */

import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import type { IncomingHttpHeaders } from "node:http"
import { request } from "node:https"
import { inject } from "vitest"
import type { KubeContext } from "./context.js"

export type { KubeContext } from "./context.js"

/** The control plane's connection details; throws outside the "integration" project. */
export const kubeContext = (): KubeContext => {
  const context = inject("kube")
  if (context === undefined) {
    throw new Error(
      'No control plane: inject("kube") is empty. Integration tests must run in the vitest project ' +
        '"integration", whose globalSetup (test/kube/globalSetup.ts) starts it.',
    )
  }
  return context
}

// ---- control server ------------------------------------------------------------------------------

const control = async <A>(path: string): Promise<A> => {
  const response = await fetch(`${kubeContext().controlUrl}${path}`, { method: "POST" })
  const body = (await response.json()) as A & { error?: string }
  if (!response.ok) throw new Error(`control plane ${path} failed: ${body.error ?? response.status}`)
  return body
}

/**
 * Stops kube-apiserver (open watches end) and starts it again on the same port and etcd; resolves
 * when it is ready. kube-controller-manager is restarted with it (see startApiServer). ~3 s.
 */
export const restartApiServer = (): Promise<void> =>
  control<object>("/apiserver/restart").then(() => undefined)

/** Stops kube-apiserver (graceful SIGTERM; open watches are closed). etcd keeps running. */
export const stopApiServer = (): Promise<void> => control<object>("/apiserver/stop").then(() => undefined)

/**
 * Starts kube-apiserver on its old port and restarts kube-controller-manager (whose informers would
 * otherwise sit in a long back-off); resolves when both are ready. A no-op if kube-apiserver is running.
 */
export const startApiServer = (): Promise<void> => control<object>("/apiserver/start").then(() => undefined)

/** Stops kube-apiserver, runs `f`, and starts it again even if `f` fails. */
export const withApiServerStopped = async <A>(f: () => Promise<A>): Promise<A> => {
  await stopApiServer()
  try {
    return await f()
  } finally {
    await startApiServer()
  }
}

/**
 * Compacts etcd at its current revision and returns it. On its own this does NOT make watches
 * fail: kube-apiserver serves watches from its watch cache. Use expireResourceVersions for a 410.
 */
export const compactEtcd = (): Promise<number> =>
  control<{ revision: number }>("/etcd/compact").then((body) => body.revision)

/**
 * Makes every resourceVersion handed out before the call too old: writes twice to etcd outside
 * /registry, compacts etcd, restarts kube-apiserver (closing every open watch and emptying its
 * watch cache). A watch from such a version then answers HTTP 200 with one event
 * `{"type":"ERROR","object":{"kind":"Status","status":"Failure","reason":"Expired","code":410,
 * "message":"too old resource version: <asked> (<oldest known>)"}}` and ends.
 * Returns the compacted etcd revision.
 */
export const expireResourceVersions = (): Promise<number> =>
  control<{ compactedRevision: number }>("/expire-resource-versions").then((body) => body.compactedRevision)

/** Whether kube-apiserver is running, and etcd's current revision. */
export const controlPlaneStatus = (): Promise<{ apiServerRunning: boolean; etcdRevision: number }> =>
  control("/status")

// ---- HTTPS requests as admin or as the unprivileged user -----------------------------------------

export type Identity = "admin" | "user"

interface Tls {
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: Buffer
}

const tlsCache = new Map<Identity, Tls>()
const tlsFor = (identity: Identity): Tls => {
  let tls = tlsCache.get(identity)
  if (tls === undefined) {
    const c = kubeContext()
    tls = {
      ca: readFileSync(c.caFile),
      cert: readFileSync(identity === "admin" ? c.adminCertFile : c.userCertFile),
      key: readFileSync(identity === "admin" ? c.adminKeyFile : c.userKeyFile),
    }
    tlsCache.set(identity, tls)
  }
  return tls
}

export interface KubeResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown
}

export interface RequestOptions {
  /** Default 30 s. */
  readonly timeoutMs?: number
  /** Default "application/json"; use "application/merge-patch+json" etc. for PATCH. */
  readonly contentType?: string
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * One request to kube-apiserver. Resolves with any HTTP status (assert on it); rejects only when
 * there is no HTTP answer (connection refused while the apiserver is stopped, timeout).
 * `body` is sent as JSON unless it is a string.
 */
export const kubeRequest = (
  identity: Identity,
  method: string,
  path: string,
  body?: unknown,
  options: RequestOptions = {},
): Promise<KubeResponse> =>
  new Promise((resolvePromise, reject) => {
    const server = new URL(kubeContext().server)
    const timeoutMs = options.timeoutMs ?? 30_000
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body)
    const req = request(
      {
        host: server.hostname,
        port: server.port,
        method,
        path,
        ...tlsFor(identity),
        // A fresh connection per request: a pooled one may be dead after an apiserver restart.
        agent: false,
        timeout: timeoutMs,
        headers: {
          accept: "application/json",
          ...(payload === undefined
            ? {}
            : {
                "content-type": options.contentType ?? "application/json",
                "content-length": Buffer.byteLength(payload),
              }),
        },
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk
        })
        res.on("end", () =>
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text) }),
        )
        res.on("error", reject)
      },
    )
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)))
    req.on("error", reject)
    req.end(payload)
  })

export const adminRequest = (method: string, path: string, body?: unknown, options?: RequestOptions) =>
  kubeRequest("admin", method, path, body, options)

export const userRequest = (method: string, path: string, body?: unknown, options?: RequestOptions) =>
  kubeRequest("user", method, path, body, options)

/** Throws with the response text unless the status is one of `expected`. */
export const expectStatus = (response: KubeResponse, ...expected: ReadonlyArray<number>): KubeResponse => {
  if (!expected.includes(response.status)) {
    throw new Error(
      `expected HTTP ${expected.join(" or ")}, got ${response.status}: ${response.text.slice(0, 500)}`,
    )
  }
  return response
}

// ---- namespaces ----------------------------------------------------------------------------------

/**
 * Creates a namespace named `<prefix>-<random>` (a valid DNS label) and returns its name.
 *
 * kube-controller-manager adds a ConfigMap (kube-root-ca.crt) and a ServiceAccount (default) to every
 * new namespace shortly after it appears; a watch opened in between would see them arrive at a
 * random moment. So by default this resolves only once both exist; `{ settle: false }` skips that.
 */
export const createNamespace = async (
  prefix: string,
  options: { readonly settle?: boolean } = {},
): Promise<string> => {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 50) || "test"
  const name = `${clean}-${randomBytes(4).toString("hex")}`
  expectStatus(await adminRequest("POST", "/api/v1/namespaces", { metadata: { name } }), 201)
  if (options.settle !== false) {
    await waitUntil(
      `kube-root-ca.crt and ServiceAccount default in namespace ${name}`,
      async () =>
        (await adminRequest("GET", `/api/v1/namespaces/${name}/configmaps/kube-root-ca.crt`)).status ===
          200 &&
        (await adminRequest("GET", `/api/v1/namespaces/${name}/serviceaccounts/default`)).status === 200,
      { timeoutMs: 60_000, intervalMs: 100 },
    )
  }
  return name
}

/**
 * Deletes a namespace (a missing one is fine). With `wait`, resolves only once it is gone, which
 * takes kube-controller-manager's namespace controller a few seconds.
 */
export const deleteNamespace = async (
  name: string,
  options: { readonly wait?: boolean; readonly timeoutMs?: number } = {},
): Promise<void> => {
  expectStatus(await adminRequest("DELETE", `/api/v1/namespaces/${name}`), 200, 202, 404)
  if (options.wait === true) {
    await waitUntil(
      `namespace ${name} to be gone`,
      async () => (await adminRequest("GET", `/api/v1/namespaces/${name}`)).status === 404,
      { timeoutMs: options.timeoutMs ?? 60_000 },
    )
  }
}

/** Polls `probe` until it returns true; throws after `timeoutMs` (default 30 s) naming `what`. */
export const waitUntil = async (
  what: string,
  probe: () => Promise<boolean>,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<void> => {
  const timeoutMs = options.timeoutMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await probe()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 250))
  }
}

// ---- watches -------------------------------------------------------------------------------------

export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR"
  /** The object; for ERROR a Status: { kind: "Status", code, reason, message }. */
  readonly object: {
    readonly kind?: string
    readonly metadata?: { readonly name?: string; readonly resourceVersion?: string }
    readonly code?: number
    readonly reason?: string
    readonly message?: string
  } & Readonly<Record<string, unknown>>
}

export interface WatchStream {
  /** HTTP status of the watch request; when it is not 200, `text` holds the (Status) body. */
  readonly status: number
  readonly text: string
  /** The next event, or "end" once the server has closed the stream. Rejects after `timeoutMs` (default 30 s). */
  next(timeoutMs?: number): Promise<WatchEvent | "end">
  close(): void
}

/**
 * Opens a watch (`path` should contain `watch=1`) and returns once the response headers are in.
 * Events are newline-delimited JSON; they queue up until read with next().
 */
export const openWatch = (identity: Identity, path: string): Promise<WatchStream> =>
  new Promise((resolvePromise, reject) => {
    const server = new URL(kubeContext().server)
    const req = request({
      host: server.hostname,
      port: server.port,
      method: "GET",
      path,
      ...tlsFor(identity),
      agent: false,
      headers: { accept: "application/json" },
    })
    req.on("error", reject)
    req.on("response", (res) => {
      const queue: Array<WatchEvent | "end"> = []
      const waiters: Array<(item: WatchEvent | "end") => void> = []
      const push = (item: WatchEvent | "end") => {
        const waiter = waiters.shift()
        if (waiter === undefined) queue.push(item)
        else waiter(item)
      }
      let buffer = ""
      let text = ""
      let ended = false
      const end = () => {
        if (ended) return
        ended = true
        push("end")
      }
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        if (res.statusCode !== 200) {
          text += chunk
          return
        }
        buffer += chunk
        for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
          const line = buffer.slice(0, newline).trim()
          buffer = buffer.slice(newline + 1)
          if (line !== "") push(JSON.parse(line) as WatchEvent)
        }
      })
      res.on("end", end)
      res.on("close", end)
      res.on("error", end)
      const stream: WatchStream = {
        status: res.statusCode ?? 0,
        get text() {
          return text
        },
        next: (timeoutMs = 30_000) => {
          const item = queue.shift()
          if (item !== undefined) return Promise.resolve(item)
          if (ended) return Promise.resolve("end")
          return new Promise((resolveNext, rejectNext) => {
            const timer = setTimeout(() => {
              const index = waiters.indexOf(waiter)
              if (index >= 0) waiters.splice(index, 1)
              rejectNext(new Error(`no watch event within ${timeoutMs} ms on ${path}`))
            }, timeoutMs)
            const waiter = (next: WatchEvent | "end") => {
              clearTimeout(timer)
              resolveNext(next)
            }
            waiters.push(waiter)
          })
        },
        close: () => {
          req.destroy()
          end()
        },
      }
      // A non-200 answer is a plain body, not a stream: hand it over complete.
      if (res.statusCode === 200) resolvePromise(stream)
      else res.on("end", () => resolvePromise(stream))
    })
    req.end()
  })
