/**
 * The Dockerfile's runtime stage as data, for the container smoke test and the benchmark: they start
 * the bundle the way the image declares (its USER, ENV, WORKDIR file and exec-form ENTRYPOINT)
 * instead of restating them.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { resolve } from "node:path"

/** The path of the image's Node.js (24, whichever Node runs the caller), installed on first use. */
export const imageNode = (): string =>
  execFileSync(resolve(import.meta.dirname, "node24.sh"), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim()

export interface Instruction {
  readonly keyword: string
  readonly args: string
}

/** Instructions with continuation lines joined, comments and blank lines dropped. */
export const instructions = (text: string): ReadonlyArray<Instruction> =>
  text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword = "", ...rest] = line.split(/\s+/)
      return { keyword: keyword.toUpperCase(), args: rest.join(" ") }
    })

export interface RuntimeStage {
  /** `uid` and `gid` of the last USER, which must be numeric (runAsNonRoot can only check numbers). */
  readonly uid: number
  readonly gid: number
  /** The exec-form ENTRYPOINT. */
  readonly entrypoint: ReadonlyArray<string>
  /** `COPY --from=<stage> <source> <destination>` of the runtime stage. */
  readonly copiesFromStages: ReadonlyArray<{ readonly source: string; readonly destination: string }>
  /** Any other COPY or ADD of the runtime stage (from the build context). */
  readonly otherCopies: ReadonlyArray<string>
  /** The environment its ENV instructions set (`ENV KEY=value …`; the runtime stage's own only). */
  readonly env: Readonly<Record<string, string>>
}

/** `KEY=value` pairs of one ENV instruction; values may be double-quoted, not otherwise escaped. */
const envPairs = (args: string): Array<[string, string]> => {
  const pairs: Array<[string, string]> = []
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) {
    const value = match[2]!
    pairs.push([match[1]!, value.startsWith('"') ? value.slice(1, -1) : value])
  }
  if (pairs.length === 0) throw new Error(`Dockerfile: ENV ${args}: expected KEY=value pairs`)
  return pairs
}

export const runtimeStage = (dockerfile: string): RuntimeStage => {
  const all = instructions(dockerfile)
  const last = all.map((i) => i.keyword).lastIndexOf("FROM")
  if (last < 0) throw new Error("Dockerfile: no FROM")
  const stage = all.slice(last)
  const user = stage.filter((i) => i.keyword === "USER").at(-1)?.args
  const ids = /^([0-9]+)(?::([0-9]+))?$/.exec(user ?? "")
  if (!ids) throw new Error(`Dockerfile: the runtime stage's USER must be numeric uid[:gid], got ${user}`)
  const uid = Number(ids[1])
  const entrypoints = stage.filter((i) => i.keyword === "ENTRYPOINT")
  if (entrypoints.length !== 1)
    throw new Error(`Dockerfile: ${entrypoints.length} ENTRYPOINTs in the runtime stage`)
  let entrypoint: unknown
  try {
    entrypoint = JSON.parse(entrypoints[0]!.args)
  } catch {
    throw new Error(
      `Dockerfile: ENTRYPOINT is not in exec form (signals would not reach node): ${entrypoints[0]!.args}`,
    )
  }
  if (
    !Array.isArray(entrypoint) ||
    entrypoint.length === 0 ||
    !entrypoint.every((a) => typeof a === "string")
  ) {
    throw new Error(`Dockerfile: ENTRYPOINT is not a list of strings: ${entrypoints[0]!.args}`)
  }
  const copies = stage.filter((i) => i.keyword === "COPY" || i.keyword === "ADD")
  const fromStages = copies.flatMap((i) => {
    const match = /^--from=\S+\s+(\S+)\s+(\S+)$/.exec(i.args)
    return match ? [{ source: match[1]!, destination: match[2]! }] : []
  })
  return {
    uid,
    gid: ids[2] === undefined ? uid : Number(ids[2]),
    entrypoint: entrypoint as Array<string>,
    copiesFromStages: fromStages,
    otherCopies: copies.filter((i) => !/^--from=/.test(i.args)).map((i) => `${i.keyword} ${i.args}`),
    env: Object.fromEntries(stage.filter((i) => i.keyword === "ENV").flatMap((i) => envPairs(i.args))),
  }
}

/**
 * The image's one file: `npm run bundle`'s command (`script`), where it writes the bundle (`outfile`,
 * its `--outfile`, relative to the repository) and where the runtime stage's one COPY puts it
 * (`destination`, relative to its WORKDIR, without a leading `./`), after checking that this COPY
 * takes exactly that file.
 */
export const imageBundle = (
  stage: RuntimeStage,
): { readonly script: string; readonly outfile: string; readonly destination: string } => {
  const packageJson = readFileSync(resolve(import.meta.dirname, "../../package.json"), "utf8")
  const script = (JSON.parse(packageJson) as { scripts: Record<string, string> }).scripts.bundle ?? ""
  const outfile = /--outfile=(\S+)/.exec(script)?.[1]
  if (outfile === undefined) throw new Error(`the bundle script names no --outfile: ${script}`)
  const [copy, ...more] = stage.copiesFromStages
  if (copy === undefined || more.length > 0 || stage.otherCopies.length > 0) {
    throw new Error(`the runtime stage must copy exactly the bundle: ${JSON.stringify(stage)}`)
  }
  if (!copy.source.endsWith(`/${outfile}`)) {
    throw new Error(`the runtime stage copies ${copy.source}, the bundle script writes ${outfile}`)
  }
  return { script, outfile, destination: copy.destination.replace(/^\.\//, "") }
}
