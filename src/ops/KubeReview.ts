/**
 * `RESYNC_AUTH=kubernetes`: the API server says who a bearer token belongs to (TokenReview,
 * `authentication.k8s.io/v1`) and whether that user may `post` to the non-resource URL
 * `/api/v1/resync` (SubjectAccessReview, `authorization.k8s.io/v1`), as controller-runtime's
 * authenticated metrics endpoint and kube-rbac-proxy do. Callers are granted access with RBAC:
 *
 * ```yaml
 * rules: [{ nonResourceURLs: ["/api/v1/resync"], verbs: ["post"] }]
 * ```
 *
 * The controller's own identity needs `create` on `tokenreviews` and `subjectaccessreviews`.
 * Answers are cached briefly per token (by its SHA-256), so a caller retrying does not cost two
 * API requests each time; a review that failed is not cached. Reviews in flight are bounded, so a
 * flood of made-up tokens costs the API server a few requests at a time.
 */
import { Cache, Duration, Effect, Either, Equal, Exit, Hash, Redacted, Schema } from "effect"
import { KubeClient } from "../kube/KubeClient.js"
import * as BearerToken from "./BearerToken.js"
import {
  AuthUnavailable,
  Forbidden,
  missingToken,
  type ResyncAuthShape,
  Unauthenticated,
} from "./ResyncAuth.js"

/** What callers must be allowed: RBAC `nonResourceURLs: [RESYNC_PATH]`, `verbs: [RESYNC_VERB]`. */
export const RESYNC_PATH = "/api/v1/resync"
export const RESYNC_VERB = "post"

const UserInfo = Schema.Struct({
  username: Schema.optional(Schema.String),
  uid: Schema.optional(Schema.String),
  groups: Schema.optional(Schema.Array(Schema.String)),
  extra: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })),
})

/** The answer's status only: the API server also echoes the request, token included, in `spec`. */
export const TokenReviewAnswer = Schema.Struct({
  status: Schema.optionalWith(
    Schema.Struct({
      authenticated: Schema.optional(Schema.Boolean),
      user: Schema.optional(UserInfo),
      error: Schema.optional(Schema.String),
    }),
    { default: () => ({}) },
  ),
})

export const SubjectAccessReviewAnswer = Schema.Struct({
  status: Schema.optionalWith(
    Schema.Struct({
      allowed: Schema.optional(Schema.Boolean),
      reason: Schema.optional(Schema.String),
      evaluationError: Schema.optional(Schema.String),
    }),
    { default: () => ({}) },
  ),
})

export interface KubeReviewOptions {
  /** How long an answer (allowed or refused) is reused for the same token. Default 10 s. */
  readonly cacheTtl?: Duration.DurationInput
  /** Most tokens whose answer is kept. Default 1,000. */
  readonly cacheCapacity?: number
  /** Most reviews in flight at once. Default 4. */
  readonly concurrentReviews?: number
}

/** A cache key that compares tokens by their digest and carries the token for the lookup. */
class ReviewedToken implements Equal.Equal {
  readonly fingerprint: string
  constructor(readonly token: Redacted.Redacted<string>) {
    this.fingerprint = BearerToken.fingerprint(token)
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof ReviewedToken && that.fingerprint === this.fingerprint
  }
  [Hash.symbol](): number {
    return Hash.string(this.fingerprint)
  }
}

type Verdict = Either.Either<void, Unauthenticated | Forbidden>

export const make = (options: KubeReviewOptions = {}): Effect.Effect<ResyncAuthShape, never, KubeClient> =>
  Effect.gen(function* () {
    const client = yield* KubeClient
    const ttl = Duration.decode(options.cacheTtl ?? Duration.seconds(10))
    const reviews = yield* Effect.makeSemaphore(options.concurrentReviews ?? 4)

    const review = (token: Redacted.Redacted<string>): Effect.Effect<Verdict, AuthUnavailable> =>
      Effect.gen(function* () {
        const identity = yield* client.post(
          "/apis/authentication.k8s.io/v1/tokenreviews",
          {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenReview",
            spec: { token: Redacted.value(token) },
          },
          { schema: TokenReviewAnswer },
        )
        const user = identity.status.user
        if (identity.status.authenticated !== true || user?.username === undefined)
          return Either.left(new Unauthenticated({ reason: "the bearer token is not valid" }))
        const access = yield* client.post(
          "/apis/authorization.k8s.io/v1/subjectaccessreviews",
          {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SubjectAccessReview",
            spec: {
              user: user.username,
              uid: user.uid,
              groups: user.groups,
              extra: user.extra,
              nonResourceAttributes: { path: RESYNC_PATH, verb: RESYNC_VERB },
            },
          },
          { schema: SubjectAccessReviewAnswer },
        )
        if (access.status.allowed === true) return Either.void
        return Either.left(
          new Forbidden({
            user: user.username,
            reason: `user "${user.username}" may not ${RESYNC_VERB} ${RESYNC_PATH}${access.status.reason ? `: ${access.status.reason}` : ""}`,
          }),
        )
      }).pipe(
        reviews.withPermits(1),
        Effect.tapError((error) =>
          Effect.logWarning("cannot review a resync caller's token with the API server").pipe(
            Effect.annotateLogs({ error: error.message }),
          ),
        ),
        Effect.mapError(
          () => new AuthUnavailable({ reason: "the API server could not review the credentials" }),
        ),
      )

    const verdicts = yield* Cache.makeWith({
      capacity: options.cacheCapacity ?? 1_000,
      lookup: (key: ReviewedToken) => review(key.token),
      // A failed review says nothing about the token: ask again next time.
      timeToLive: (exit) => (Exit.isSuccess(exit) ? ttl : Duration.zero),
    })

    return {
      check: (authorization) =>
        Effect.gen(function* () {
          const token = yield* Effect.orElseFail(BearerToken.fromAuthorization(authorization), missingToken)
          return yield* yield* verdicts.get(new ReviewedToken(token))
        }),
    } satisfies ResyncAuthShape
  })
