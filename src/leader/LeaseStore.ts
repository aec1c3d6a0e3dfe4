/**
 * The `coordination.k8s.io/v1` Lease on the API server: its Schema, and the three requests leader
 * election makes about it. Writes are optimistic (PUT with the `resourceVersion` read): a 409
 * Conflict means somebody else wrote first, and comes back as `conflict: true` for the elector to
 * read again at its next attempt.
 */
import { type Context, Data, type Duration, Effect, Option, Schema } from "effect"
import type { KubeClient } from "../kube/KubeClient.js"
import { isConflict, isNotFound, type KubeError } from "../kube/KubeError.js"
import type { LeaseRecord } from "./Rules.js"

/** One request about the Lease failed (logged and retried by the elector, never fatal on its own). */
export class LeaseRequestError extends Data.TaggedError("LeaseRequestError")<{
  readonly lease: string
  readonly operation: "get" | "create" | "update"
  readonly conflict: boolean
  readonly message: string
  readonly cause: KubeError
}> {}

const OptionalString = Schema.optional(Schema.NullOr(Schema.String))
const OptionalNumber = Schema.optional(Schema.NullOr(Schema.Number))
const Extra = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** The fields of a Lease we read; every other field is kept as is and written back unchanged. */
export const Lease = Schema.Struct(
  {
    metadata: Schema.Struct({ resourceVersion: Schema.String }, Extra),
    spec: Schema.optional(
      Schema.NullOr(
        Schema.Struct(
          {
            holderIdentity: OptionalString,
            leaseDurationSeconds: OptionalNumber,
            acquireTime: OptionalString,
            renewTime: OptionalString,
            leaseTransitions: OptionalNumber,
          },
          Extra,
        ),
      ),
    ),
  },
  Extra,
)
export type Lease = typeof Lease.Type

export const recordOf = (lease: Lease): LeaseRecord => ({
  holderIdentity: lease.spec?.holderIdentity ?? "",
  leaseDurationSeconds: lease.spec?.leaseDurationSeconds ?? 0,
  acquireTime: lease.spec?.acquireTime ?? undefined,
  renewTime: lease.spec?.renewTime ?? undefined,
  leaseTransitions: lease.spec?.leaseTransitions ?? 0,
})

const specOf = (record: LeaseRecord) => ({
  holderIdentity: record.holderIdentity,
  leaseDurationSeconds: record.leaseDurationSeconds,
  ...(record.acquireTime === undefined ? {} : { acquireTime: record.acquireTime }),
  ...(record.renewTime === undefined ? {} : { renewTime: record.renewTime }),
  leaseTransitions: record.leaseTransitions,
})

/** The three operations leader election needs; {@link make} implements them on a `KubeClient`. */
export interface LeaseStore {
  readonly get: Effect.Effect<Option.Option<Lease>, LeaseRequestError>
  readonly create: (record: LeaseRecord) => Effect.Effect<Lease, LeaseRequestError>
  /** PUT with `current`'s resourceVersion: fails with `conflict: true` when somebody wrote first. */
  readonly update: (current: Lease, record: LeaseRecord) => Effect.Effect<Lease, LeaseRequestError>
}

/** The Lease `namespace/name`; every request gives up after `requestTimeout`. */
export const make = (
  kube: Context.Tag.Service<KubeClient>,
  namespace: string,
  name: string,
  requestTimeout: Duration.DurationInput,
): LeaseStore => {
  const lease = `${namespace}/${name}`
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`
  const path = `${collection}/${encodeURIComponent(name)}`
  const failed = (operation: LeaseRequestError["operation"]) => (cause: KubeError) =>
    new LeaseRequestError({
      lease,
      operation,
      conflict: isConflict(cause),
      message: `${operation} lease ${lease}: ${cause.message}`,
      cause,
    })
  return {
    get: kube.get(path, { schema: Lease, timeout: requestTimeout }).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<Lease>())),
      Effect.mapError(failed("get")),
    ),
    create: (record) =>
      kube
        .post(
          collection,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: specOf(record),
          },
          { schema: Lease, timeout: requestTimeout },
        )
        .pipe(Effect.mapError(failed("create"))),
    update: (current, record) =>
      kube
        .put(
          path,
          { ...current, spec: { ...current.spec, ...specOf(record) } },
          { schema: Lease, timeout: requestTimeout },
        )
        .pipe(Effect.mapError(failed("update"))),
  }
}
