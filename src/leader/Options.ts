/**
 * Who elects, for which Lease, with which durations: values resolved once, from the configuration
 * and the process, and handed to the elector (which reads no configuration itself).
 */
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import { type Duration, Option } from "effect"
import type { LeaderElectionConfig } from "../config/Config.js"

export interface ElectionOptions {
  readonly namespace: string
  /** Name of the Lease. */
  readonly name: string
  readonly identity: string
  readonly leaseDuration: Duration.DurationInput
  readonly renewDeadline: Duration.DurationInput
  readonly retryPeriod: Duration.DurationInput
}

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

/** The namespace the pod runs in (service-account mount), else `default`. */
export const inClusterNamespace = (): string => {
  try {
    const namespace = readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim()
    return namespace === "" ? "default" : namespace
  } catch {
    return "default"
  }
}

/**
 * `POD_NAME` (or the hostname) plus a random suffix: unique per process, so that a restarted
 * container never mistakes the lease of its dead predecessor for its own; readable in the Lease.
 */
export const processIdentity = (env: NodeJS.ProcessEnv = process.env): string => {
  const base = env.POD_NAME?.trim() || hostname()
  return `${base}_${randomUUID()}`
}

export const fromConfig = (
  config: LeaderElectionConfig,
  identity: string = processIdentity(),
): ElectionOptions => ({
  namespace: Option.getOrElse(config.namespace, inClusterNamespace),
  name: config.id,
  identity,
  leaseDuration: config.leaseDuration,
  renewDeadline: config.renewDeadline,
  retryPeriod: config.retryPeriod,
})
