/**
 * A kubeconfig's token files (client-go's `tokenFile`, client-node's `token-file`), handed to an
 * authenticator that re-reads them instead of reading them once at load time.
 */
import * as path from "node:path"
import type { KubeConfig, User } from "@kubernetes/client-node"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
// js-yaml is what client-node parses kubeconfigs with. Its `loadYaml` would hand the document to the
// generated API's ObjectSerializer, which loads every generated model class (a third of a MiB of
// code) for a document that only needs parsing.
import { load as parseYaml } from "js-yaml"

/** The part of a kubeconfig that names token files; the rest is client-node's to read. */
const TokenFileUsers = Schema.Struct({
  users: Schema.optional(
    Schema.NullishOr(
      Schema.Array(
        Schema.Struct({
          name: Schema.optional(Schema.Unknown),
          user: Schema.optional(
            Schema.NullishOr(
              Schema.Struct({
                tokenFile: Schema.optional(Schema.Unknown),
                "token-file": Schema.optional(Schema.Unknown),
              }),
            ),
          ),
        }),
      ),
    ),
  ),
})
const decodeTokenFileUsers = Schema.decodeUnknownOption(TokenFileUsers)

/**
 * client-node ignores client-go's `tokenFile` user field and reads its own `token-file` only once,
 * at load time. Both are rewritten to its token-file authenticator, which re-reads the file (as
 * client-go does), so a kubeconfig pointing at a rotated token keeps working.
 */
export const withTokenFiles = (kubeConfig: KubeConfig, yaml: string, baseDir: string): void => {
  const raw = Option.getOrUndefined(decodeTokenFileUsers(parseYaml(yaml)))
  const tokenFiles = new Map<string, string>()
  for (const entry of raw?.users ?? []) {
    const file = entry.user?.tokenFile ?? entry.user?.["token-file"]
    if (typeof entry.name === "string" && typeof file === "string" && file !== "") {
      tokenFiles.set(entry.name, path.resolve(baseDir, file))
    }
  }
  if (tokenFiles.size === 0) return
  kubeConfig.users = kubeConfig.users.map((user): User => {
    const tokenFile = tokenFiles.get(user.name)
    if (tokenFile === undefined || user.exec != null || user.authProvider != null) return user
    const { token: _token, ...rest } = user
    return { ...rest, authProvider: { name: "tokenFile", config: { tokenFile } } }
  })
}
