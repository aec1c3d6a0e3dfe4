/**
 * Relisting many watched types at once: a resync (which reports what it found) and a change of
 * the opted-out namespaces (which only needs the lists to happen). Each type relists in its own
 * fiber, so its changes keep their order; the list slots bound how many LISTs run at once.
 */
import { type Duration, Effect, Option } from "effect"
import { typeKey } from "./DiscoveryResult.js"
import type { TypeWatch } from "./TypeWatch.js"

export interface RelistOutcome {
  readonly types: number
  readonly objects: number
  readonly deletes: number
  /** Types whose list did not complete in time (failing, forbidden). */
  readonly incomplete: ReadonlyArray<string>
}

export interface RelistOptions {
  /** A type that does not complete its list within this time is reported, not waited for. */
  readonly timeout: Duration.DurationInput
  /** Types asked to relist at once (each then waits for a list slot). */
  readonly concurrency: number
}

export const relistTypes = (
  watches: ReadonlyArray<TypeWatch>,
  options: RelistOptions,
): Effect.Effect<RelistOutcome> =>
  Effect.forEach(
    watches,
    (watch) =>
      Effect.map(Effect.timeoutOption(watch.relists.relist, options.timeout), (outcome) => ({
        key: typeKey(watch.target.group, watch.target.plural),
        outcome,
      })),
    { concurrency: options.concurrency },
  ).pipe(
    Effect.map((results) => {
      let objects = 0
      let deletes = 0
      const incomplete: Array<string> = []
      for (const { key, outcome } of results) {
        if (Option.isNone(outcome)) incomplete.push(key)
        else {
          objects += outcome.value.objects
          deletes += outcome.value.deletes
        }
      }
      return { types: results.length, objects, deletes, incomplete }
    }),
  )
