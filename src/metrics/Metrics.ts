/**
 * Every metric of the controller (watches, pipeline, resync), through Effect's `Metric` so that any exporter reads them; `/metrics`
 * renders them in Prometheus text format.
 */
import { Metric, MetricBoundaries, type MetricPair } from "effect"

export const upsertsSent = Metric.counter("vectordb_sync_upserts_sent_total", {
  description: "Upserts acknowledged by the receiver",
  incremental: true,
})

export const deletesSent = Metric.counter("vectordb_sync_deletes_sent_total", {
  description: "Deletes acknowledged by the receiver",
  incremental: true,
})

/** Tagged with `outcome`: success, unavailable, rejected. */
export const requests = Metric.counter("vectordb_sync_requests_total", {
  description: "Requests to the receiver by outcome",
  incremental: true,
})

export const retries = Metric.counter("vectordb_sync_retries_total", {
  description: "Batches put back for another attempt after a transient failure",
  incremental: true,
})

export const rejectedEntries = Metric.counter("vectordb_sync_rejected_entries_total", {
  description: "Changes the receiver refused for good and that were set aside",
  incremental: true,
})

export const pendingEntries = Metric.gauge("vectordb_sync_pending_entries", {
  description: "Distinct ids waiting to be sent",
})

export const sendDuration = Metric.histogram(
  "vectordb_sync_send_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 }),
  "Duration of one request to the receiver",
)

export const lastSuccess = Metric.gauge("vectordb_sync_last_success_timestamp_seconds", {
  description: "Unix time of the last request the receiver acknowledged",
})

export const watchedTypes = Metric.gauge("vectordb_sync_watched_types", {
  description: "Resource types currently watched",
})

export const watchEvents = Metric.counter("vectordb_sync_watch_events_total", {
  description: "Changes observed by the watches, by type and operation",
  incremental: true,
})

export const watchRestarts = Metric.counter("vectordb_sync_watch_restarts_total", {
  description: "Watch requests made again, by reason (closed, expired, idle, error)",
  incremental: true,
})

export const forbiddenTypes = Metric.gauge("vectordb_sync_forbidden_types", {
  description: "Watched types the controller may not list or watch (403): narrow RBAC shows here",
})

export const resyncs = Metric.counter("vectordb_sync_resyncs_total", {
  description: "Full resyncs run (periodic and requested)",
  incremental: true,
})

export const checkpointBytes = Metric.gauge("vectordb_sync_checkpoint_bytes", {
  description: "Compressed size of the last checkpoint written, over all its ConfigMaps",
})

export const checkpointIds = Metric.gauge("vectordb_sync_checkpoint_ids", {
  description: "Ids in the last checkpoint written (what the receiver may hold)",
})

/** Tagged with `outcome`: success, failed. */
export const checkpointWrites = Metric.counter("vectordb_sync_checkpoint_writes_total", {
  description: "Checkpoint writes by outcome",
  incremental: true,
})

/**
 * The snapshot without the series of types no longer watched (a CRD removed): Effect's registry
 * keeps every series it ever saw, but a scrape should not report types that are gone for ever.
 */
export const withoutRemovedTypes = (
  snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  watched: ReadonlySet<string>,
): ReadonlyArray<MetricPair.MetricPair.Untyped> =>
  snapshot.filter((pair) => {
    const type = pair.metricKey.tags.find((tag) => tag.key === "type")
    return type === undefined || watched.has(type.value)
  })
