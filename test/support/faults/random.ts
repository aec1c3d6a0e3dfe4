/**
 * A small seeded PRNG for the randomized fault tests, so that a failing run can be replayed with
 * `FAULT_SEED=<n>`. mulberry32: 32-bit state, good enough spread for choosing test operations.
 */

export interface Random {
  readonly seed: number
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [0, n). */
  int(n: number): number
  /** True with probability p. */
  chance(p: number): boolean
  pick<A>(items: ReadonlyArray<A>): A
}

export const mulberry32 = (seed: number): Random => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const random: Random = {
    seed,
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error("pick from an empty list")
      return items[Math.floor(next() * items.length)]!
    },
  }
  return random
}

/** The seeds CI runs: fixed, so that a red CI run is a reproducible one. */
export const CI_SEEDS: ReadonlyArray<number> = [1, 20260220]

const parseSeed = (text: string): number => {
  const seed = Number(text)
  if (text === "" || !Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(
      `FAULT_SEED must be integers from 0 to 4294967295, comma-separated, got ${JSON.stringify(text)}`,
    )
  }
  return seed
}

/**
 * The seeds to run: `FAULT_SEED` when set (one seed, or several comma-separated, e.g. a failing
 * run's printed seed), else `CI_SEEDS` when `CI=true`, else one fresh seed. Tests print the seed.
 */
export const seedsFromEnv = (env: NodeJS.ProcessEnv = process.env): ReadonlyArray<number> => {
  const text = env.FAULT_SEED?.trim()
  if (text !== undefined && text !== "") return text.split(",").map((part) => parseSeed(part.trim()))
  if (env.CI === "true") return CI_SEEDS
  return [Math.floor(Math.random() * 0xffffffff)]
}
