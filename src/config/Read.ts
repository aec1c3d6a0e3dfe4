/**
 * Reading declared variables through Effect `Config`, and the operator's error lines.
 *
 * Rules that hold for every variable (so operators can predict them):
 * - Values are trimmed; an empty or blank value is the same as an unset variable (a Helm chart that
 *   renders `value: ""` gets the default). This is also what the Go controller does.
 * - A malformed value is an error, never a silent fallback to the default. Every problem is reported,
 *   not just the first: `Config.all` accumulates failures in `ConfigError.And`, and the cross-field
 *   checks run per group so one bad group does not hide another.
 * - Error messages name the variable, quote the value received and say what is expected. Values that
 *   look like URLs have their user-info masked; the receiver token itself is never read here.
 */
import { Config, ConfigError, Data, Either, Option } from "effect"
import { showValue } from "./Parse.js"
import type { Optional, Variable, WithDefault } from "./Variables.js"

/** One variable as read: its value, the text it came from and whether the operator set it. */
export interface Read<A> {
  readonly name: string
  readonly value: A
  /** The trimmed value received, or the default's text when unset. */
  readonly text: string
  readonly explicit: boolean
}

/** `NAME: got "value", expected ...` as a ConfigError. */
export const invalid = (name: string, text: string, expected: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([name], `got ${showValue(text)}, expected ${expected}`)

/** The raw value of a variable, trimmed; None when unset, empty or blank. */
const rawValue = (name: string): Config.Config<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.option,
    Config.map(Option.flatMap((s) => Option.liftPredicate(s.trim(), (t) => t !== ""))),
  )

const parsed = <A>(
  variable: Variable<A>,
  text: string,
  explicit: boolean,
): Either.Either<Read<A>, ConfigError.ConfigError> =>
  Either.mapBoth(variable.parse(text), {
    onLeft: (expected) => invalid(variable.name, text, expected),
    onRight: (value) => ({ name: variable.name, value, text, explicit }),
  })

const readWithDefault = <A>(variable: WithDefault<A>): Config.Config<Read<A>> =>
  Config.mapOrFail(rawValue(variable.name), (raw) =>
    parsed(
      variable,
      Option.getOrElse(raw, () => variable.default),
      Option.isSome(raw),
    ),
  )

const readOptional = <A>(variable: Optional<A>): Config.Config<Read<Option.Option<A>>> =>
  Config.mapOrFail(
    rawValue(variable.name),
    Option.match({
      onNone: (): Either.Either<Read<Option.Option<A>>, ConfigError.ConfigError> =>
        Either.right({ name: variable.name, value: Option.none(), text: "", explicit: false }),
      onSome: (text) =>
        Either.map(parsed(variable, text, true), (r) => ({ ...r, value: Option.some(r.value) })),
    }),
  )

/** Reads a declared variable, keeping where its value came from (for cross-field messages). */
export function read<A>(variable: WithDefault<A>): Config.Config<Read<A>>
export function read<A>(variable: Optional<A>): Config.Config<Read<Option.Option<A>>>
export function read<A>(variable: Variable<A>): Config.Config<Read<A> | Read<Option.Option<A>>> {
  return variable.default === undefined ? readOptional(variable) : readWithDefault(variable)
}

/** The value of a declared variable: its default when unset, None when it has none. */
export function value<A>(variable: WithDefault<A>): Config.Config<A>
export function value<A>(variable: Optional<A>): Config.Config<Option.Option<A>>
export function value<A>(variable: Variable<A>): Config.Config<A | Option.Option<A>> {
  return variable.default === undefined
    ? Config.map(readOptional(variable), (r) => r.value)
    : Config.map(readWithDefault(variable), (r) => r.value)
}

/**
 * An optional variable and its aliases: whichever is set. Setting two of them to values that differ
 * (`same` compares them) is an error on the variable's own name.
 */
export const readAliased = <A>(
  variable: Optional<A>,
  noun: string,
  same: (a: A, b: A) => boolean,
): Config.Config<Option.Option<A>> =>
  Config.all([
    readOptional(variable),
    ...variable.aliases.map((alias) => readOptional({ ...variable, name: alias.name, aliases: [] })),
  ]).pipe(
    Config.mapOrFail(([primary, ...aliases]) => {
      const conflicts = aliases.flatMap((alias) =>
        Option.isSome(primary.value) &&
        Option.isSome(alias.value) &&
        !same(primary.value.value, alias.value.value)
          ? [
              Either.left(
                invalid(
                  primary.name,
                  primary.text,
                  `the same ${noun} as its alias ${alias.name} (got ${showValue(alias.text)}), or only one of the two set`,
                ),
              ),
            ]
          : [],
      )
      return allChecks(Option.firstSomeOf([primary.value, ...aliases.map((a) => a.value)]), conflicts)
    }),
  )

/**
 * `lower` must be below `upper` (strictly or not). The line names the variable the operator set:
 * when only one of the two is explicit, the other is at its default and the fix is on the set one.
 */
export const ordered = (
  lower: Read<number>,
  upper: Read<number>,
  strict: boolean,
): Either.Either<void, ConfigError.ConfigError> => {
  if (strict ? lower.value < upper.value : lower.value <= upper.value) return Either.void
  const other = (r: Read<number>) => `${r.name} (${r.value}${r.explicit ? "" : ", its default"})`
  return upper.explicit || !lower.explicit
    ? Either.left(
        invalid(upper.name, upper.text, `a value ${strict ? "greater than" : "at least"} ${other(lower)}`),
      )
    : Either.left(
        invalid(lower.name, lower.text, `a value ${strict ? "less than" : "at most"} ${other(upper)}`),
      )
}

/** Runs independent checks and reports every failure. */
export const allChecks = <A>(
  value: A,
  checks: ReadonlyArray<Either.Either<void, ConfigError.ConfigError>>,
): Either.Either<A, ConfigError.ConfigError> => {
  const errors = checks.flatMap((c) => (Either.isLeft(c) ? [c.left] : []))
  const [first, ...rest] = errors
  return first === undefined ? Either.right(value) : Either.left(rest.reduce(ConfigError.And, first))
}

/**
 * One line per problem, `NAME: got "value", expected ...`, in the order the variables are read,
 * duplicates removed. Handles any `ConfigError`, including Effect's own messages.
 */
export const formatConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const where = (path: ReadonlyArray<string>) => (path.length === 0 ? "configuration" : path.join("_"))
  const lines = ConfigError.reduceWithContext<undefined, Array<string>>(error, undefined, {
    andCase: (_, left, right) => [...left, ...right],
    orCase: (_, left, right) => [...left, ...right],
    invalidDataCase: (_, path, message) => [`${where(path)}: ${message}`],
    missingDataCase: (_, path, message) => [`${where(path)}: ${message}`],
    sourceUnavailableCase: (_, path, message) => [`${where(path)}: could not be read: ${message}`],
    unsupportedCase: (_, path, message) => [`${where(path)}: ${message}`],
  })
  return [...new Set(lines)]
}

/** The configuration could not be read; `problems` holds one line per bad variable. */
export class ConfigValidationError extends Data.TaggedError("ConfigValidationError")<{
  readonly cause: ConfigError.ConfigError
  readonly problems: ReadonlyArray<string>
}> {
  static fromConfigError(cause: ConfigError.ConfigError): ConfigValidationError {
    return new ConfigValidationError({ cause, problems: formatConfigError(cause) })
  }
  override get message(): string {
    return `invalid configuration:\n${this.problems.join("\n")}`
  }
}
