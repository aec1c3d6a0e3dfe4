/**
 * `npm run docs:config`: rewrites the configuration table in README.md from the declarations in
 * src/config/Variables.ts, the one place the variables are described. Variables.test.ts fails while
 * the two differ.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { configReference } from "../../src/config/Variables.js"
import { renderConfigTable, replaceConfigTable } from "./configTable.js"

const path = new URL("../../README.md", import.meta.url)
const readme = readFileSync(path, "utf8")
const updated = replaceConfigTable(readme, renderConfigTable(configReference))
if (updated === undefined) {
  console.error('README.md: no "| Variable |" table in its "## Configuration" section')
  process.exit(1)
}
if (updated === readme) {
  console.log("README.md: configuration table already up to date")
} else {
  writeFileSync(path, updated)
  console.log(`README.md: configuration table rewritten (${configReference.length} variables)`)
}
