/**
 * The Prometheus Operator's PrometheusRule CRD, reduced to the fields the chart writes and without
 * x-kubernetes-preserve-unknown-fields: a misspelt field is rejected (helm sends strict requests).
 */
import { adminRequest, expectStatus, waitUntil } from "../kube/harness.js"

export const PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"

const str = { type: "string" }
const stringMap = { type: "object", additionalProperties: str }

/** Creates the CRD unless it exists; true when this call created it (and should delete it). */
export const ensurePrometheusRuleCrd = async (): Promise<boolean> => {
  const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${PROMETHEUS_RULE_CRD}`
  if ((await adminRequest("GET", path)).status !== 404) return false
  expectStatus(
    await adminRequest("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      metadata: { name: PROMETHEUS_RULE_CRD },
      spec: {
        group: "monitoring.coreos.com",
        scope: "Namespaced",
        names: {
          plural: "prometheusrules",
          singular: "prometheusrule",
          kind: "PrometheusRule",
          listKind: "PrometheusRuleList",
        },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: "object",
                required: ["spec"],
                properties: {
                  apiVersion: str,
                  kind: str,
                  metadata: { type: "object" },
                  spec: {
                    type: "object",
                    properties: {
                      groups: {
                        type: "array",
                        items: {
                          type: "object",
                          required: ["name", "rules"],
                          properties: {
                            name: str,
                            rules: {
                              type: "array",
                              items: {
                                type: "object",
                                required: ["expr"],
                                properties: {
                                  alert: str,
                                  expr: str,
                                  for: str,
                                  labels: stringMap,
                                  annotations: stringMap,
                                },
                              },
                            },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    }),
    201,
  )
  await waitUntil("the PrometheusRule CRD to be served", async () => {
    const response = await adminRequest("GET", "/apis/monitoring.coreos.com/v1")
    return (
      response.status === 200 &&
      (response.json as { resources: Array<{ name: string }> }).resources.some(
        (r) => r.name === "prometheusrules",
      )
    )
  })
  return true
}

export const deletePrometheusRuleCrd = () =>
  adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${PROMETHEUS_RULE_CRD}`)
