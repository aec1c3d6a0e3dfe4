#!/usr/bin/env node
/**
 * The controller process: configuration from the environment (a bad value exits 1 with one line
 * per problem), logs on stderr (JSON by default) so that stdout stays free for dry-run payloads,
 * and SIGTERM/SIGINT interrupt the program, which stops the watches and flushes what is pending.
 * A second signal exits at once.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer, Logger } from "effect"
import * as Controller from "./Controller.js"
import {
  type ConfigValidationError,
  loadSyncConfig,
  SyncConfig,
  type SyncConfigShape,
} from "./config/Config.js"
import { KubeClient } from "./kube/KubeClient.js"
import type { LeadershipLost } from "./leader/Elector.js"
import * as Standby from "./leader/Standby.js"

const loggerFor = (config: SyncConfigShape) =>
  Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      config.logFormat === "json"
        ? Logger.withConsoleError(Logger.jsonLogger)
        : Logger.prettyLogger({ stderr: true }),
    ),
    Logger.minimumLogLevel(config.logLevel),
  )

/**
 * Leadership lost: log and exit with code 1 at once, so that no finalizer (no final flush) runs.
 * Exiting, rather than interrupting the controller, is deliberate: an interruption would run the
 * pipeline's finalizer, which sends as a non-leader. Kubernetes restarts the container and it
 * comes back as a standby (controller-runtime does the same).
 */
const exitOnLostLeadership = (lost: LeadershipLost): Effect.Effect<void> =>
  Effect.logError("leadership lost: exiting at once without flushing").pipe(
    Effect.annotateLogs({
      lease: lost.lease,
      identity: lost.identity,
      reason: lost.reason,
      error: lost.message,
    }),
    Effect.zipRight(Effect.sync(() => process.exit(1))),
  )

const program = Effect.gen(function* () {
  const config = yield* loadSyncConfig
  const app = Controller.layerWithConfiguredSink.pipe(
    // LEADER_ELECTION=true: built first (the controller starts only once leading), released last
    // (after the final flush); a lost lease exits 1 at once. Otherwise always the leader.
    Layer.provide(Standby.layer({ onLost: exitOnLostLeadership })),
    Layer.provide(KubeClient.layerFromDefault({ maxConnections: config.apiServerMaxConnections })),
    Layer.provide(Layer.succeed(SyncConfig, config)),
  )
  return yield* Effect.gen(function* () {
    for (const warning of config.warnings) yield* Effect.logWarning(warning)
    yield* Effect.logInfo("starting k8s-vectordb-sync")
    return yield* Layer.launch(app).pipe(
      // Reported through the configured logger (JSON on stderr), not the runtime's own.
      Effect.tapErrorCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.void
          : Effect.logError("k8s-vectordb-sync stopped on an error", cause),
      ),
    )
  }).pipe(Effect.provide(loggerFor(config)))
})

/**
 * The first SIGTERM/SIGINT is NodeRuntime's: it interrupts the program, and the final flush runs
 * for up to SHUTDOWN_TIMEOUT_MS. A second one says the operator will not wait (a second Ctrl-C,
 * or a supervisor that escalates): exit now, with the code a shell gives a signalled process.
 */
const exitOnSecondSignal = () => {
  let received = 0
  const onSignal = (signal: NodeJS.Signals) => {
    received += 1
    if (received < 2) return
    process.stderr.write(`${signal} received again: exiting without waiting for the final flush\n`)
    process.exit(signal === "SIGINT" ? 130 : 143)
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
}

exitOnSecondSignal()
program.pipe(
  Effect.catchTag("ConfigValidationError", (error: ConfigValidationError) =>
    Effect.sync(() => {
      process.stderr.write(`invalid configuration:\n${error.problems.map((line) => `  ${line}\n`).join("")}`)
      process.exit(1)
    }),
  ),
  (main) => NodeRuntime.runMain(main, { disablePrettyLogger: true, disableErrorReporting: true }),
)
