/**
 * `npm run bundle`: the one file the container image runs, `src/main.ts` and what it imports, as
 * CommonJS for Node.js 20 and later.
 *
 *   vite-node src/bundle.ts --outfile=dist/bundle/main.cjs
 *
 * A bundle holds the code its imports reach, and three packages reach far more than the controller
 * runs; what a module does when loaded stays in memory whether or not it is ever called:
 * - `@kubernetes/client-node`'s KubeConfig (`dist/config.js`) imports its generated API client's
 *   index for two names (`makeApiClient`'s configuration), and that index loads every model and
 *   API class (320 KB minified). Here it gets the two modules that define them.
 * - undici's index loads all of undici: fetch, WebSocket, EventSource, the mock agents, the cache.
 *   The controller (its transports, the proxy of a kubeconfig's `proxy-url`) and
 *   `@effect/platform-node`'s undici client use its dispatchers and their request API, so here
 *   `undici` is those. client-node imports `node-fetch` for code the controller never runs; here
 *   that is Node's own fetch, loaded only if called.
 * - effect's Schema imports fast-check (through `effect/FastCheck`) for the arbitraries that
 *   property tests build from schemas. The controller builds none, so here it is empty (3 MiB
 *   less resident memory on a small cluster; BENCHMARKS.md).
 *
 * CommonJS, because Node builds an ES module facade for every built-in an ES module imports,
 * reading all its exports, and `node:http`'s include `WebSocket`, which loads Node's own copy of
 * undici (4 MiB). `globalThis.Headers` is undefined for the same reason: undici's cookie helpers,
 * which the controller does not use, read it when loaded.
 */
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import * as esbuild from "esbuild"

const OUTFILE = "--outfile="
const outfile = process.argv.find((arg) => arg.startsWith(OUTFILE))?.slice(OUTFILE.length)
if (!outfile) throw new Error("usage: vite-node src/bundle.ts --outfile=<file>")

const require = createRequire(import.meta.url)

/**
 * undici's dispatchers with their request API, set up as its index sets them up, and nothing else
 * of it. An ES module, so that a name the bundle imports and this lacks fails the build.
 */
const undiciDispatchers = `import Dispatcher from "./lib/dispatcher/dispatcher.js"
import api from "./lib/api/index.js"
import Client from "./lib/dispatcher/client.js"
import Pool from "./lib/dispatcher/pool.js"
import Agent from "./lib/dispatcher/agent.js"
import ProxyAgent from "./lib/dispatcher/proxy-agent.js"
import errors from "./lib/core/errors.js"
import { getGlobalDispatcher, setGlobalDispatcher } from "./lib/global.js"
Object.assign(Dispatcher.prototype, api)
export { Dispatcher, Client, Pool, Agent, ProxyAgent, errors, getGlobalDispatcher, setGlobalDispatcher }
export default { Dispatcher, Client, Pool, Agent, ProxyAgent, errors, getGlobalDispatcher, setGlobalDispatcher }
`

/**
 * What client-node's bundled modules import from node-fetch: its fetch-based API client's `fetch`
 * and KubeConfig's `Headers` (for `applyToFetchOptions`). The controller calls neither; were
 * they called, they would be Node's own, looked up on first use, so that loading costs nothing.
 */
const nodeFetch = `const builtin = (name) => Reflect.get(globalThis, name)
export default function fetch(...args) { return builtin("fetch")(...args) }
export function Headers(init) { return new (builtin("Headers"))(init) }
`

/** The two names client-node's KubeConfig imports from its generated client's index, from their own modules. */
const clientNodeConfiguration = `export { createConfiguration } from "./configuration.js"
export { ServerConfiguration } from "./servers.js"
`

const LEAN = "loads-only-what-runs"

/** What stands in for each left-out module: its source, and where its relative imports resolve. */
const replacements: Record<string, { readonly contents: string; readonly resolveDir?: string }> = {
  undici: { contents: undiciDispatchers, resolveDir: dirname(require.resolve("undici/package.json")) },
  "node-fetch": { contents: nodeFetch },
  "fast-check": { contents: "module.exports = {}" },
  "client-node-configuration": {
    contents: clientNodeConfiguration,
    resolveDir: join(dirname(require.resolve("@kubernetes/client-node/dist/config.js")), "gen"),
  },
}

const loadsOnlyWhatRuns: esbuild.Plugin = {
  name: LEAN,
  setup(build) {
    build.onResolve({ filter: /^(undici|node-fetch|fast-check)$/ }, (args) => ({
      path: args.path,
      namespace: LEAN,
    }))
    // The generated client's index as KubeConfig imports it; an importer that needs more keeps it.
    build.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (args) =>
      /[\\/]@kubernetes[\\/]client-node[\\/]dist[\\/]config\.js$/.test(args.importer)
        ? { path: "client-node-configuration", namespace: LEAN }
        : undefined,
    )
    build.onLoad({ filter: /.*/, namespace: LEAN }, (args) => ({ ...replacements[args.path], loader: "js" }))
  },
}

await esbuild.build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  minify: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  define: { "globalThis.Headers": "undefined" },
  outfile,
  plugins: [loadsOnlyWhatRuns],
  logLevel: "warning",
})
