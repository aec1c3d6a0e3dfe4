/**
 * Who may call `POST /api/v1/resync`. A resync relists every watched type from the API server, so
 * the endpoint (reachable through the chart's Service) is not open by default. Three modes
 * (`RESYNC_AUTH`):
 *
 * - `kubernetes` (the default without a token file): the caller's bearer token is reviewed by the
 *   API server (TokenReview), and the user it names must be allowed verb `post` on the non-resource
 *   URL `/api/v1/resync` (SubjectAccessReview), as controller-runtime's authenticated metrics
 *   endpoint does. Callers are granted it with RBAC; no secret to distribute. See KubeReview.ts.
 * - `token`: the bearer token in `RESYNC_TOKEN_FILE`, re-read on every request.
 * - `none`: open, as the Go controller was.
 */
import { Context, Data, Effect, Option } from "effect"
import * as BearerToken from "./BearerToken.js"

/** No credentials, or credentials that name nobody: 401. */
export class Unauthenticated extends Data.TaggedError("Unauthenticated")<{ readonly reason: string }> {}

/** Credentials of someone not allowed to resync: 403. */
export class Forbidden extends Data.TaggedError("Forbidden")<{
  readonly user: string
  readonly reason: string
}> {}

/** The credentials could not be checked (token file unreadable, API server unreachable): 503. */
export class AuthUnavailable extends Data.TaggedError("AuthUnavailable")<{ readonly reason: string }> {}

export type Refusal = Unauthenticated | Forbidden | AuthUnavailable

export interface ResyncAuthShape {
  /** Succeeds when the request's `Authorization` header allows a resync. */
  readonly check: (authorization: string | undefined) => Effect.Effect<void, Refusal>
}

/** The mode configured is chosen in ApiServer.ts (`resyncAuthLayer`). */
export class ResyncAuth extends Context.Tag("k8s-vectordb-sync/ResyncAuth")<ResyncAuth, ResyncAuthShape>() {}

export const missingToken = (): Unauthenticated =>
  new Unauthenticated({ reason: "a bearer token is required (Authorization: Bearer <token>)" })

/** Everyone may resync. */
export const open: ResyncAuthShape = { check: () => Effect.void }

/** The bearer token must be the one in `file`, read afresh on every request. */
export const fromTokenFile = (file: string): ResyncAuthShape => ({
  check: (authorization) =>
    Effect.gen(function* () {
      const given = yield* Effect.orElseFail(BearerToken.fromAuthorization(authorization), missingToken)
      // Refused whatever was sent: without a readable, non-empty file nothing can be compared.
      const expected = yield* BearerToken.fromFile(file).pipe(
        Effect.flatMap(Option.match({ onNone: () => Effect.fail("it is empty"), onSome: Effect.succeed })),
        Effect.tapError((error) =>
          Effect.logWarning("cannot read the resync token file; refusing resync requests").pipe(
            Effect.annotateLogs({ file, error: String(error) }),
          ),
        ),
        Effect.orElseFail(() => new AuthUnavailable({ reason: "the resync token file cannot be read" })),
      )
      if (!BearerToken.matches(given, expected))
        return yield* new Unauthenticated({ reason: "the bearer token is not the resync token" })
    }),
})
