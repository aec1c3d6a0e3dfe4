/**
 * setupFiles entry of the "integration" project: runs in every integration test file.
 * A file that stopped kube-apiserver and then failed before starting it again must not take the
 * following files down with it, so each file ends by making sure the apiserver is up (a no-op
 * costing one local request when it is).
 */
import { afterAll } from "vitest"
import { startApiServer } from "./harness.js"

afterAll(async () => {
  await startApiServer()
})
