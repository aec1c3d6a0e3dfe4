import type { LeaseRecord } from "../../../src/leader/Rules.js"

/** A lease held by "other" since a fixed time; tests override what they are about. */
export const record = (overrides: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: "other",
  leaseDurationSeconds: 15,
  acquireTime: "2026-11-25T10:00:00.000000Z",
  renewTime: "2026-11-25T10:00:00.000000Z",
  leaseTransitions: 3,
  ...overrides,
})
