// Package load is the engine of `quire bench`: it drives a Quire cluster
// over its REST API the way clients do, measures what they see, checks the
// credits of every job, and writes a Report.
//
// A scenario is a named load shape (Scenarios lists them): closed loops of
// clients that each submit a job and wait for its end before the next
// (small, medium, large, mixed), job creation under concurrency (create),
// cancellation mid-processing (cancel), faults of the Gemini API
// (network-failure, rate-limit), a node killed mid-run (worker-crash), the
// same load per node on growing clusters (scale), and small jobs behind big
// ones (fairness).
//
// A run is one scenario against one target: a running cluster (Config.Target)
// or, by default, a local cluster that the run starts from the quire binary
// (one `quire serve` process per node, each with its own data dir in a
// temporary directory) together with a fake Gemini API served in this
// process (bench/fakegemini behind a tap that sees every call, attributes it
// to its job through a tag in the job's prompt, and can drop connections).
// Everything the run started is stopped before Run returns.
//
// Every Report states the floor it is measured against: for gemini jobs the
// fake's own latency per chunk, for text jobs `pdftotext` on the same files
// in the same run, when it is installed.
package load
