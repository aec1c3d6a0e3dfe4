/**
 * Per-request authentication material. client-node's `applyToHTTPSOptions` is the one place
 * where every authenticator runs (token, token file, exec plugin, OIDC, client certificate,
 * basic auth, impersonation) and where CA and key files are read, so asking it again is how
 * rotated tokens and certificates take effect. This module turns its answer into headers plus
 * the TLS options that decide which connection pool a request may use.
 */
import { createHash } from "node:crypto"
import type * as https from "node:https"
import type { KubeConfig } from "@kubernetes/client-node"
import * as Effect from "effect/Effect"
import { KubeConfigError } from "./KubeError.js"

/** TLS material; requests that share it may share connections. */
export interface KubeTls {
  readonly ca?: string | Buffer | Array<string | Buffer>
  readonly cert?: string | Buffer | Array<string | Buffer>
  readonly key?: string | Buffer | Array<string | Buffer>
  readonly pfx?: unknown
  readonly passphrase?: string
  readonly rejectUnauthorized?: boolean
  readonly servername?: string
}

export interface KubeAuthMaterial {
  /** `Authorization`, `Impersonate-User`, … — secrets: never log these. */
  readonly headers: Readonly<Record<string, string>>
  readonly tls: KubeTls
  /** Digest of the TLS material and proxy: equal keys can reuse one connection pool. */
  readonly transportKey: string
}

const headerValue = (value: string | number | ReadonlyArray<string> | undefined): string | undefined => {
  if (value === undefined) return undefined
  // Token files often end in a newline; Node rejects header values that contain one.
  return (Array.isArray(value) ? value.join(", ") : String(value)).trim()
}

const digest = (parts: ReadonlyArray<unknown>): string => {
  const hash = createHash("sha256")
  for (const part of parts) {
    if (part === undefined) hash.update("\0u")
    else if (Buffer.isBuffer(part)) hash.update(part)
    else if (Array.isArray(part)) hash.update(digest(part))
    else hash.update(String(part))
    hash.update("\0")
  }
  return hash.digest("hex")
}

/** Runs the kubeconfig's authenticators once and captures what a request needs. */
export const resolveAuth = (kubeConfig: KubeConfig): Effect.Effect<KubeAuthMaterial, KubeConfigError> =>
  Effect.tryPromise({
    try: async () => {
      const options: https.RequestOptions = {}
      await kubeConfig.applyToHTTPSOptions(options)
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(options.headers ?? {})) {
        const v = headerValue(value)
        if (v !== undefined && v !== "") headers[name] = v
      }
      if (options.auth) headers.Authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`
      const tls: Record<string, unknown> = {}
      if (options.ca !== undefined) tls.ca = options.ca
      if (options.cert !== undefined) tls.cert = options.cert
      if (options.key !== undefined) tls.key = options.key
      if (options.pfx !== undefined) tls.pfx = options.pfx
      if (options.passphrase !== undefined) tls.passphrase = options.passphrase
      if (options.rejectUnauthorized !== undefined) tls.rejectUnauthorized = options.rejectUnauthorized
      if (options.servername !== undefined) tls.servername = options.servername
      const cluster = kubeConfig.getCurrentCluster()
      return {
        headers,
        tls: tls as KubeTls,
        transportKey: digest([
          cluster?.server,
          cluster?.proxyUrl,
          options.ca,
          options.cert,
          options.key,
          options.pfx as unknown,
          options.passphrase,
          options.rejectUnauthorized,
          options.servername,
        ]),
      }
    },
    catch: (cause) =>
      new KubeConfigError({
        message: `cannot obtain credentials for user "${kubeConfig.getCurrentUser()?.name ?? "?"}": ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
        cause,
      }),
  })
