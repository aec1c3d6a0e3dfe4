/**
 * Per-request authentication material. client-node's `applyToHTTPSOptions` is the one place
 * where every authenticator runs (token, token file, exec plugin, OIDC, client certificate,
 * basic auth, impersonation) and where CA and key files are read, so asking it again is how
 * rotated tokens and certificates take effect. This module turns its answer into headers plus
 * the TLS options that decide which connection pool a request may use.
 */
import { createHash } from "node:crypto"
import type * as https from "node:https"
import type * as tls from "node:tls"
import type { KubeConfig } from "@kubernetes/client-node"
import * as Effect from "effect/Effect"
import { KubeConfigError } from "./KubeError.js"

/** TLS material; requests that share it may share connections. */
export type KubeTls = Readonly<
  Pick<
    tls.ConnectionOptions,
    "ca" | "cert" | "key" | "pfx" | "passphrase" | "rejectUnauthorized" | "servername"
  >
>

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
      // Only what is set: an absent option must stay absent, not become an explicit `undefined`.
      const material: KubeTls = {
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.cert === undefined ? {} : { cert: options.cert }),
        ...(options.key === undefined ? {} : { key: options.key }),
        ...(options.pfx === undefined ? {} : { pfx: options.pfx }),
        ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
        ...(options.rejectUnauthorized === undefined
          ? {}
          : { rejectUnauthorized: options.rejectUnauthorized }),
        ...(options.servername === undefined ? {} : { servername: options.servername }),
      }
      const cluster = kubeConfig.getCurrentCluster()
      return {
        headers,
        tls: material,
        transportKey: digest([
          cluster?.server,
          cluster?.proxyUrl,
          options.ca,
          options.cert,
          options.key,
          options.pfx,
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
