//go:build bench

// Package bench holds Quire's benchmarks: measurements of a real node, the
// built quire binary started as a separate process on 127.0.0.1 with a
// temporary data dir, driven over its REST API the way clients drive it.
// A figure is one number a benchmark reports, with how it was measured.
//
// The benchmarks are behind the bench build tag and meant to run once each
// (-benchtime 1x); `make bench-go` builds the binary, fetches the corpus and
// runs them, saving the output in bench/results/. Each benchmark reports its
// figures with b.ReportMetric, and after the last one a table of every figure
// is printed:
//
//   - BenchmarkCreateLatency: round trip of POST /v1/jobs (202 received) for
//     a generated 10 MB PDF, many concurrent clients; p50 and p99.
//   - BenchmarkManual1158: the 1158-page Octave manual of the corpus, from
//     POST to completed with the text extractor on a fresh node with default
//     flags, against `pdftotext` on the same file; and the node's peak RSS.
//
// The cluster benchmarks (cluster_test.go) start several nodes sharing an
// admin token and drive the gemini extractor against an in-process fake
// Gemini whose fixed latency is the whole cost of a chunk:
//
//   - BenchmarkClusterFairness: a one-chunk job of one account while another
//     keeps every slot busy and a queue waiting; its time from POST to
//     completed (p50) against the same job on the idle cluster.
//   - BenchmarkClusterScale: the same work per node on 1, 2 and 4 nodes;
//     completed pages per second and the scale-out efficiency.
//   - BenchmarkClusterKill: SIGKILL of a node running chunks of another
//     node's job; the time until those chunks run again elsewhere (p50).
//
// Their sizes are flags (-cluster-fair-*, -cluster-scale-*, -cluster-kill-*).
//
// The subpackages are not behind the tag: pdfgen writes the PDFs the
// benchmarks and tests generate, fakegemini is the fake Gemini API, and load
// is the engine of `quire bench`, the load tester for users (scenarios,
// reports with their floor, credit checks); `make bench` runs a standard set
// of its scenarios.
package bench
