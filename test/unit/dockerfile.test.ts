/**
 * The Dockerfile passes dockerfile-utils' linter (every rule at "error", nothing reported) and keeps
 * the properties the Helm chart and the container smoke test rely on: multi-stage, Node.js 24,
 * production dependencies only in the runtime stage, numeric non-root user, exec-form ENTRYPOINT,
 * OCI labels, and an allowlist .dockerignore.
 */
import { readFileSync } from "node:fs"
import { ValidationSeverity, type ValidatorSettings, validate } from "dockerfile-utils"
import { describe, expect, it } from "vitest"

const dockerfile = readFileSync("Dockerfile", "utf8")
const dockerignore = readFileSync(".dockerignore", "utf8")

const strict: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
}

/** Instructions with continuation lines joined, comments dropped. */
const instructions = (text: string): ReadonlyArray<{ keyword: string; args: string }> =>
  text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword = "", ...rest] = line.split(/\s+/)
      return { keyword: keyword.toUpperCase(), args: rest.join(" ") }
    })

describe("Dockerfile", () => {
  it("passes dockerfile-utils lint with every rule as an error", () => {
    const problems = validate(dockerfile, strict).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)
    expect(problems).toEqual([])
  })

  it("the linter is live: it reports a broken Dockerfile", () => {
    const broken = "FROM node:24\nMAINTAINER someone\nworkdir app\nENTRYPOINT ['node', 'x']\nEXPOSE port\n"
    expect(validate(broken, strict).length).toBeGreaterThanOrEqual(3)
  })

  const all = instructions(dockerfile)
  const froms = all.filter((i) => i.keyword === "FROM")
  const runtimeStart = all.lastIndexOf(froms.at(-1)!)
  const runtime = all.slice(runtimeStart)

  it("is multi-stage on Node.js 24 slim, runtime stage last", () => {
    expect(froms.map((f) => f.args.split(/\s+AS\s+/i)[1])).toEqual(["build", "runtime"])
    const nodeImage = all.find((i) => i.keyword === "ARG" && i.args.startsWith("NODE_IMAGE="))
    expect(nodeImage?.args).toMatch(/^NODE_IMAGE=node:24-[a-z]+-slim$/)
    for (const from of froms) expect(from.args).toMatch(/\$\{NODE_IMAGE\}/)
  })

  it("ships only the bundle: no node_modules, no source, no compiler in the runtime stage", () => {
    const build = all.slice(all.indexOf(froms[0]!), all.indexOf(froms[1]!))
    expect(build.some((i) => i.keyword === "RUN" && i.args === "npm run bundle")).toBe(true)
    const copies = runtime.filter((i) => i.keyword === "COPY").map((i) => i.args)
    expect(copies).toEqual(["--from=build /app/dist/bundle/main.mjs ./main.mjs"])
  })

  it("runs as a numeric non-root user with an exec-form ENTRYPOINT of the bundle", () => {
    const user = runtime.filter((i) => i.keyword === "USER").at(-1)?.args ?? ""
    expect(user).toMatch(/^[1-9][0-9]*(:[1-9][0-9]*)?$/)
    const entrypoint = runtime.filter((i) => i.keyword === "ENTRYPOINT")
    expect(entrypoint).toHaveLength(1)
    expect(JSON.parse(entrypoint[0]!.args)).toEqual(["node", "main.mjs"])
    expect(runtime.some((i) => i.keyword === "CMD")).toBe(false)
    expect(runtime.filter((i) => i.keyword === "EXPOSE").map((i) => i.args)).toEqual(["8081 8082"])
  })

  it("carries the OCI labels", () => {
    const labels = runtime
      .filter((i) => i.keyword === "LABEL")
      .map((i) => i.args)
      .join(" ")
    for (const key of ["title", "description", "licenses", "source", "version", "revision", "created"]) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`)
    }
  })

  it(".dockerignore lets in only what the build needs", () => {
    const lines = dockerignore
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"))
    expect(lines[0]).toBe("*")
    const allowed = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1))
    expect(allowed.sort()).toEqual(
      ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src/", "src/**"].sort(),
    )
    // Everything the Dockerfile COPYs from the context is allowed in.
    const copied = all
      .filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    for (const source of copied) expect(allowed.some((a) => a === source || a === `${source}/`)).toBe(true)
  })
})
