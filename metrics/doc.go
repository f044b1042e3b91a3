// Package metrics defines every metric a Quire node exposes on /metrics, with
// its exact name and labels, and the small typed functions the other packages
// call to move them: JobCreated, ChunkFinished, CreditsCharged, MemberDown and
// so on. A metric here is one Prometheus metric family; its series are the
// label combinations.
//
// The metrics live in a set the package owns (a VictoriaMetrics metrics.Set,
// not the library's default set), process-wide like the process_* metrics
// they are exposed beside: a node has one of each, so callers need no handle.
// WritePrometheus (and Handler, for /metrics) writes the set, then the go_*
// and process_* metrics of the process, in the Prometheus text format with
// HELP and TYPE lines.
//
// Gauges that describe state owned elsewhere come from callbacks, called once
// per scrape: RegisterJobAges, RegisterSlots, RegisterPebble. Each returns a
// func that removes the callback; the last one registered wins.
//
// # Labels and cardinality
//
// Every label takes values from a fixed set, except member (the cluster's
// node names), the HTTP route (route patterns, never request paths) and the
// HTTP status (the codes answered). A value outside its set is recorded as
// "unknown", so a bug cannot create series without bound. Series with fixed labels exist from the start at 0,
// so rate() and the alert rules see the first increment.
//
// cohort is the rollout cohort of the account: account_number % 100, the
// number the rollout policy compares with its percentage, rounded down to its
// decade: "0-9", "10-19", ..., "90-99" (see Cohort). Ten values, not a
// hundred; at a 25 % rollout cohort "20-29" holds accounts of both routes,
// which the route label tells apart.
//
// size is the job's page-count bucket (see SizeOf): "lt30" (under 30 pages),
// "30to100" (30-99), "100to300" (100-299), "300plus" (300 and more).
//
// # Metrics
//
// Histograms expose name_bucket{le="..."}, name_sum and name_count.
//
// | name | type | labels | meaning |
// |---|---|---|---|
// | quire_jobs_created_total | counter | route, cohort | jobs accepted (JobCreated) |
// | quire_jobs_finished_total | counter | status, route, cohort | jobs that reached status completed, partially_completed, failed or cancelled (JobFinished) |
// | quire_job_duration_seconds | histogram, 1 s to 1 h | size | creation to end of completed and partially completed jobs (JobFinished) |
// | quire_job_running_oldest_seconds | gauge | size | age of the oldest unfinished job this node owns; 0 when none (RegisterJobAges) |
// | quire_chunks_finished_total | counter | outcome | chunk attempts that ended: done, failed, retried, lost, crashed, rate_limited, cancelled (ChunkFinished) |
// | quire_chunk_duration_seconds | histogram, 0.1 s to 10 min | | duration of chunk attempts (ChunkFinished) |
// | quire_chunk_retries_total | counter | | attempts started after the first of their chunk (ChunkRetried) |
// | quire_queue_depth | gauge | | chunks waiting for a slot on this node (RegisterSlots) |
// | quire_slots_busy | gauge | | chunk slots in use on this node (RegisterSlots) |
// | quire_slots_capacity | gauge | | chunk slots of this node, --concurrency (RegisterSlots) |
// | quire_cluster_members_alive | gauge | | members this node sees alive, itself included (MemberUp, MemberDown, MemberLeft) |
// | quire_cluster_member_up | gauge | member | 1 if this node sees the peer alive, 0 if it failed; a peer that left gracefully has no series |
// | quire_credits_reserved_total | counter | | credits reserved (CreditsReserved) |
// | quire_credits_charged_total | counter | | credits charged for processed pages (CreditsCharged) |
// | quire_credits_refunded_total | counter | | credits refunded for pages not processed (CreditsRefunded) |
// | quire_ledger_discrepancy | gauge | | ledger invariant violations found by the last check; must be 0 (SetLedgerDiscrepancy) |
// | quire_gemini_requests_total | counter | outcome | Gemini model calls (generateContent): ok, 429, 5xx, timeout, error; calls a cancelled job aborted are not counted (GeminiRequest) |
// | quire_gemini_tokens_total | counter | kind | Gemini tokens, kind input or output (GeminiTokens) |
// | quire_http_requests_total | counter | route, method, status | HTTP requests answered (HTTPRequest) |
// | quire_http_request_duration_seconds | histogram, 5 ms to 1 min | route | HTTP request duration (HTTPRequest) |
// | quire_memory_limit_bytes | gauge | | memory the process may use: the cgroup limit (v2 memory.max, v1 memory.limit_in_bytes) if set and lower, else MemTotal; absent where neither can be read |
// | quire_pebble_disk_usage_bytes | gauge | | disk space of the Pebble store (RegisterPebble) |
// | quire_pebble_memtable_bytes | gauge | | bytes of Pebble memtables (RegisterPebble) |
// | quire_pebble_compactions_total | counter | | Pebble compactions since the store opened (RegisterPebble) |
// | quire_pebble_read_amplification | gauge | | Pebble read amplification (RegisterPebble) |
// | quire_pdf_engine_discards_total | counter | reason | PDFium instances thrown away instead of reused: trap (a WebAssembly trap), memory (hit --pdf-memory-limit-mb), stack (came near a stack overflow: deep nesting), error (another error while reading), grown (worked but kept too much memory) (PDFEngineDiscarded) |
// | quire_rollout_requests_total | counter | route, cohort, outcome | requests the rollout policy routed, by answer class: ok, client_error, server_error (RolloutRequest) |
//
// The alert rules in deploy/prometheus/alerts.yml read these names, and
// process_resident_memory_bytes / quire_memory_limit_bytes for memory.
package metrics
