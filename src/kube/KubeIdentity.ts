/**
 * Who the controller is to the API server, as far as the kubeconfig tells without asking the
 * server. Safe to log: it names the authentication method, never the secret.
 */
import { X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import type { Cluster, Context, User } from "@kubernetes/client-node"

export type KubeAuthMethod =
  | "client-certificate"
  | "token"
  | "token-file"
  | "exec"
  | "auth-provider"
  | "basic"
  | "anonymous"

export interface KubeIdentity {
  readonly context: string
  readonly cluster: string
  readonly server: string
  readonly user: string
  readonly namespace: string | undefined
  readonly authMethod: KubeAuthMethod
  /** Subject of the client certificate (`CN=alice, O=dev`), when the method is one. */
  readonly certificateSubject: string | undefined
  /** `Impersonate-User`, when the kubeconfig asks for impersonation. */
  readonly impersonating: string | undefined
}

const authMethodOf = (user: User): KubeAuthMethod => {
  // client-node fills absent fields with null, not undefined.
  if (user.exec != null) return "exec"
  if (user.authProvider != null) {
    if (user.authProvider?.config?.tokenFile) return "token-file"
    if (user.authProvider?.name === "exec" || user.authProvider?.config?.exec) return "exec"
    return "auth-provider"
  }
  if (user.token) return "token"
  if (user.certData || user.certFile) return "client-certificate"
  if (user.username) return "basic"
  return "anonymous"
}

// A certificate that cannot be read here will fail the first request with a clearer error;
// identity is for logs only, so it degrades to "unknown subject" rather than failing.
const certificateSubjectOf = (user: User): string | undefined => {
  try {
    const pem = user.certFile
      ? fs.readFileSync(user.certFile)
      : user.certData
        ? Buffer.from(user.certData, "base64")
        : undefined
    if (pem === undefined) return undefined
    return new X509Certificate(pem).subject.split("\n").join(", ")
  } catch {
    return undefined
  }
}

export const identityOf = (context: Context, cluster: Cluster, user: User): KubeIdentity => {
  const authMethod = authMethodOf(user)
  return {
    context: context.name,
    cluster: cluster.name,
    server: cluster.server,
    user: user.name,
    namespace: context.namespace ?? undefined,
    authMethod,
    certificateSubject: user.certData || user.certFile ? certificateSubjectOf(user) : undefined,
    impersonating: user.impersonateUser ?? undefined,
  }
}

/** One line for startup logs: `user "admin" (client-certificate CN=admin, O=system:masters) at https://…`. */
export const describeIdentity = (identity: KubeIdentity): string => {
  const detail = identity.certificateSubject
    ? `${identity.authMethod} ${identity.certificateSubject}`
    : identity.authMethod
  const as = identity.impersonating ? ` as "${identity.impersonating}"` : ""
  return `user "${identity.user}" (${detail})${as} at ${identity.server}, context "${identity.context}"`
}
