/** The binaries test/kube/build.sh provides besides the control plane (helm). */
import { spawnSync } from "node:child_process"
import { join } from "node:path"

/**
 * A binary built by test/kube/build.sh: from KUBEBUILDER_ASSETS when it is there, else from
 * build.sh's cache (building it if needed). Fails, never skips, when neither has it.
 */
export const kubeTool = (name: string): string => {
  const assets = process.env.KUBEBUILDER_ASSETS
  if (assets !== undefined && assets !== "") {
    const candidate = join(assets, name)
    if (spawnSync("test", ["-x", candidate]).status === 0) return candidate
  }
  const built = spawnSync("bash", ["test/kube/build.sh"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
  const dir = built.stdout?.trim().split("\n").at(-1) ?? ""
  const candidate = join(dir, name)
  if (built.status !== 0 || dir === "" || spawnSync("test", ["-x", candidate]).status !== 0) {
    throw new Error(
      `No ${name} binary: KUBEBUILDER_ASSETS=${assets ?? "(unset)"} lacks it and test/kube/build.sh ` +
        `(exit ${built.status}) did not provide ${candidate}. Install Go (see test/kube/go.mod) and run test/kube/build.sh.`,
    )
  }
  return candidate
}
