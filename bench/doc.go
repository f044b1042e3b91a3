//go:build bench

// Package bench holds Quire's benchmarks: measurements of a real node, the
// built quire binary started as a separate process on 127.0.0.1 with a
// temporary data dir, driven over its REST API the way clients drive it.
// A figure is one number a benchmark reports, with how it was measured.
//
// The benchmarks are behind the bench build tag and meant to run once each
// (-benchtime 1x); `make bench` builds the binary, fetches the corpus and
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
// The subpackage pdfgen, which is not behind the tag, writes the PDFs the
// benchmarks and tests generate.
package bench
