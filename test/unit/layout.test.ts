/**
 * The folder rules of src/ (README "Architecture"): each folder imports only what sits below it
 * in the data flow, and no module imports itself back through others. Read from the sources'
 * import statements, so a new import that breaks the layering fails here rather than in review.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { describe, expect, it } from "vitest"

const SRC = resolve(import.meta.dirname, "../../src")

const sources = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  )

/** Module (path under src/, no extension) → modules of src/ it imports, type-only imports included. */
const graph = new Map(
  sources(SRC).map((file) => {
    const text = readFileSync(file, "utf8")
    const imports = [...text.matchAll(/^(?:import|export)[^;]*?from\s+"(\.[^"]+)"/gms)].map((match) =>
      relative(SRC, resolve(dirname(file), match[1]!)).replace(/\.js$/, ""),
    )
    return [relative(SRC, file).replace(/\.ts$/, ""), imports] as const
  }),
)

const folderOf = (module: string) => (module.includes("/") ? module.slice(0, module.indexOf("/")) : ".")

/** What each folder may import besides itself: only folders further down the data flow. */
const allowed: Record<string, ReadonlyArray<string>> = {
  record: [],
  config: [],
  metrics: [],
  schedule: [],
  http: ["config"],
  kube: ["http", "schedule"],
  sink: ["record", "http", "config", "schedule"],
  watch: ["kube", "record", "metrics", "schedule", "http", "config"],
  leader: ["kube", "http", "config", "schedule", "metrics"],
  pipeline: ["record", "sink", "leader", "metrics", "schedule", "config"],
  ops: ["watch", "pipeline", "record", "metrics", "http", "config", "schedule", "kube", "leader"],
  capabilities: ["watch", "pipeline", "record", "sink", "kube", "config", "schedule", "metrics"],
  checkpoint: ["watch", "pipeline", "record", "kube", "leader", "config", "schedule", "metrics"],
}

describe("src/ layout", () => {
  it("reads every module", () => {
    expect(graph.size).toBeGreaterThan(30)
    expect(graph.get("pipeline/Pipeline")).toContain("pipeline/DebounceBatch")
  })

  it.each(Object.keys(allowed))("%s/ imports only folders below it", (folder) => {
    const wrong = [...graph]
      .filter(([module]) => folderOf(module) === folder)
      .flatMap(([module, imports]) =>
        imports
          .filter((target) => folderOf(target) !== folder && !allowed[folder]!.includes(folderOf(target)))
          .map((target) => `${module} → ${target}`),
      )
    expect(wrong).toEqual([])
  })

  it("every folder of src/ has a rule", () => {
    const folders = new Set([...graph.keys()].map(folderOf))
    folders.delete(".")
    expect([...folders].filter((folder) => !(folder in allowed))).toEqual([])
  })

  it("has no import cycles", () => {
    const cycles: Array<string> = []
    const state = new Map<string, "visiting" | "done">()
    const visit = (module: string, path: ReadonlyArray<string>) => {
      if (state.get(module) === "done") return
      if (state.get(module) === "visiting") {
        cycles.push([...path.slice(path.indexOf(module)), module].join(" → "))
        return
      }
      state.set(module, "visiting")
      for (const target of graph.get(module) ?? []) visit(target, [...path, module])
      state.set(module, "done")
    }
    for (const module of graph.keys()) visit(module, [])
    expect(cycles).toEqual([])
  })
})
