/**
 * Narrowed RBAC: the controller runs as an unprivileged identity that may list and watch
 * everything it is asked to except Secrets. It syncs the rest, becomes ready, and reports the
 * forbidden type in /readyz detail, the metrics and the log instead of failing.
 */
import { Effect, Metric } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { forbiddenTypes } from "../../src/metrics/Metrics.js"
import { Watchers } from "../../src/watch/Watchers.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
  userRequest,
} from "../kube/harness.js"
import { eventually, type RunningController, startController } from "../support/controller.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

let receiver: Receiver
let controller: RunningController
const role = `vectordb-sync-no-secrets-${Date.now()}`

beforeAll(async () => {
  const { userName } = kubeContext()
  expectStatus(
    await adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
      metadata: { name: role },
      rules: [
        { apiGroups: [""], resources: ["configmaps", "namespaces"], verbs: ["list", "watch"] },
        {
          apiGroups: ["apiextensions.k8s.io"],
          resources: ["customresourcedefinitions"],
          verbs: ["list", "watch"],
        },
      ],
    }),
    201,
  )
  expectStatus(
    await adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
      metadata: { name: role },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: userName }],
    }),
    201,
  )
  // The API server's authorizer learns of new bindings a moment later: until then the user's lists
  // are refused, and a controller started now would rightly report configmaps as forbidden too.
  await eventually(
    async () =>
      (await userRequest("GET", "/api/v1/configmaps?limit=1")).status === 200 &&
      (await userRequest("GET", "/api/v1/namespaces?limit=1")).status === 200,
    () => "the ClusterRoleBinding never took effect",
  )
  receiver = await startReceiver()
  controller = await startController({
    kubeconfig: kubeContext().userKubeconfig,
    receiver,
    config: { watchResourceTypes: ["configmaps", "namespaces", "secrets"] },
  })
})

afterAll(async () => {
  await controller?.stop()
  await receiver?.close()
  await adminRequest("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`)
  await adminRequest("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`)
})

it("syncs what it may list, reports the forbidden type and is ready all the same", async () => {
  await eventually(
    () => controller.ready(),
    () => "never ready",
  )
  const status = await controller.runtime.runPromise(Effect.flatMap(Watchers, (w) => w.status))
  const byType = new Map(status.map((s) => [s.key, s]))
  expect(byType.get("secrets")?.phase).toBe("forbidden")
  expect(byType.get("secrets")?.synced).toBe(false)
  expect(byType.get("configmaps")?.synced).toBe(true)
  expect((await controller.runtime.runPromise(Metric.value(forbiddenTypes))).value).toBe(1)

  const ns = await createNamespace("forbidden")
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "visible" } }),
    201,
  )
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "hidden" } }),
    201,
  )
  await eventually(
    () => receiver.state.has(`${ns}/v1/ConfigMap/visible`),
    () => "configmap not synced",
  )
  expect(receiver.state.has(`${ns}/v1/Secret/hidden`)).toBe(false)
  await deleteNamespace(ns)
})
