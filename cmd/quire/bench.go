package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/bench/load"
)

func newBenchCmd() *cobra.Command {
	var cfg load.Config
	var jsonPath, htmlPath, scaleNodes string
	var quiet bool
	var minSuccess float64
	var scenarios strings.Builder
	for _, s := range load.Scenarios() {
		fmt.Fprintf(&scenarios, "  %-16s %s\n", s[0], s[1])
	}
	cmd := &cobra.Command{
		Use:   "bench SCENARIO",
		Short: "Load-test a cluster: closed loops of clients, faults, crashes, scale-out; a report with its floor",
		Long: `Load-test Quire the way clients use it, and report what they saw.

Without --target, bench starts a local cluster of --nodes nodes from this
binary (data in a temporary directory) and a fake Gemini API in its own
process, and stops them at the end. With --target URL it drives a running
cluster: give --admin-token (QUIRE_ADMIN_TOKEN) to create an account, or
--api-key (QUIRE_API_KEY) to use an existing one.

Scenarios:
` + scenarios.String() + `
Load: --clients K clients each submit a job and wait for its end, then the
next, until --jobs N jobs in all or for --duration T. PDFs: real ones from
--pdfs DIR, or generated ones of --pages pages (default: per scenario).

The table goes to stdout, a live progress line to stderr. --json FILE writes
every figure and every job; --html FILE a page with plots that works offline.
Every report states its floor: for gemini, the fake's own latency per chunk;
for text, pdftotext on the same files (when installed). Every ended job's
credits are checked (reserved = charged + refunded, charged = pages done);
bench exits non-zero when they do not add up.`,
		Example: `  quire bench small --jobs 20 --clients 4 --pages 10
  quire bench mixed --nodes 1 --slots 64 --clients 32 --duration 2m \
      --fake-latency-base 2s --fake-latency-per-page 20ms --html mixed.html
  quire bench large --pages 300 --fake-latency-base 2s --fake-latency-per-page 0 --jobs 8
  quire bench small --extractor text --pdfs ~/.cache/quire-corpus --duration 30s
  quire bench create --target http://localhost:8080 --admin-token "$QUIRE_ADMIN_TOKEN"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			cfg.Scenario = args[0]
			if cfg.Target != "" {
				// Credentials come from the environment only for a target:
				// a local cluster makes its own.
				if cfg.AdminToken == "" {
					cfg.AdminToken = strings.TrimSpace(os.Getenv("QUIRE_ADMIN_TOKEN"))
				}
				if cfg.APIKey == "" {
					cfg.APIKey = strings.TrimSpace(os.Getenv("QUIRE_API_KEY"))
				}
			}
			cfg.Fake.Set = fl.Changed("fake-latency-base") || fl.Changed("fake-latency-per-page") || fl.Changed("fake-latency-jitter")
			if !cfg.Fake.Set {
				cfg.Fake.LatencyBase, cfg.Fake.LatencyPerPage, cfg.Fake.LatencyJitter = 0, 0, 0
			}
			if scaleNodes != "" {
				for f := range strings.SplitSeq(scaleNodes, ",") {
					n, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil {
						return fmt.Errorf("--scale-nodes: %q is not a number", f)
					}
					cfg.ScaleNodes = append(cfg.ScaleNodes, n)
				}
			}
			stderr := cmd.ErrOrStderr()
			if !quiet {
				cfg.Progress, cfg.ProgressTTY, cfg.Log = stderr, isTerminal(stderr), stderr
			}
			rep, err := load.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := rep.WriteTable(cmd.OutOrStdout()); err != nil {
				return err
			}
			if jsonPath != "" {
				if err := writeFile(jsonPath, rep.WriteJSON); err != nil {
					return err
				}
			}
			if htmlPath != "" {
				if err := writeFile(htmlPath, rep.WriteHTML); err != nil {
					return err
				}
			}
			var errs []error
			if rep.Interrupted {
				errs = append(errs, errors.New("interrupted"))
			}
			if !rep.OK {
				errs = append(errs, fmt.Errorf("%d problem(s): %s", len(rep.Problems), strings.Join(rep.Problems, "; ")))
			}
			if minSuccess > 0 && rep.Summary.SuccessRate < minSuccess {
				errs = append(errs, fmt.Errorf("success rate %.3f is below --min-success %.3f", rep.Summary.SuccessRate, minSuccess))
			}
			return errors.Join(errs...)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Target, "target", "", "REST API of a running cluster (default: start a local one)")
	fl.StringVar(&cfg.AdminToken, "admin-token", "", "with --target: admin token to create an account and watch the queue (default QUIRE_ADMIN_TOKEN)")
	fl.StringVar(&cfg.APIKey, "api-key", "", "with --target: submit with this existing account instead (default QUIRE_API_KEY)")
	fl.IntVar(&cfg.Nodes, "nodes", 0, "nodes of the local cluster (default 1; worker-crash 3)")
	fl.IntVar(&cfg.Slots, "slots", 0, "--concurrency of each local node (default 8)")
	fl.IntVar(&cfg.Clients, "clients", 0, "concurrent clients (default 4)")
	fl.IntVar(&cfg.Accounts, "accounts", 0, "accounts the clients share (default: one per client, each under the node's per-account rate limit)")
	fl.IntVar(&cfg.Jobs, "jobs", 0, "jobs in all (default: as many as --duration allows)")
	fl.DurationVar(&cfg.Duration, "duration", 0, "how long the clients submit when --jobs is not given (default 30s)")
	fl.StringVar(&cfg.Extractor, "extractor", "", "text or gemini (default: gemini on a local cluster, text against a target)")
	fl.StringVar(&cfg.PDFDir, "pdfs", "", "folder of real PDFs to submit (default: generated ones)")
	fl.IntVar(&cfg.Pages, "pages", 0, "pages of every generated PDF (default: per scenario)")
	fl.IntVar(&cfg.ChunkPages, "chunk-pages", 0, "chunk_pages of the jobs (default: cancel, worker-crash, scale 10; else the node's)")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of the choice of PDFs and of the fake's faults")
	fl.DurationVar(&cfg.Poll, "poll", 0, "how often a client polls its job (default 100ms)")
	fl.DurationVar(&cfg.JobTimeout, "job-timeout", 0, "a job not ended after this is cancelled and counted as failed (default 30m)")
	fl.DurationVar(&cfg.Sample, "sample", 0, "how often the cluster's load and queue are sampled (default 500ms)")
	fl.Int64Var(&cfg.Credits, "credits", 0, "credits of each account bench creates (default 1e12)")
	fl.DurationVar(&cfg.ChunkTimeout, "chunk-timeout", 0, "--chunk-timeout of local nodes (default: the node's; network-failure 10s)")
	fl.IntVar(&cfg.MaxAttempts, "max-attempts", 0, "--max-attempts of local nodes (default: the node's)")
	fl.StringArrayVar(&cfg.ServeArgs, "serve-arg", nil, "another `quire serve` flag for every local node (repeat it), e.g. --serve-arg=--gemini-rpm=60")
	fl.StringVar(&cfg.WorkDir, "work-dir", "", "where generated PDFs and node data go (default: a temporary directory)")
	fl.BoolVar(&cfg.Keep, "keep", false, "keep the work directory (node logs and data) at the end")
	fl.DurationVar(&cfg.Fake.LatencyBase, "fake-latency-base", load.DefaultFake.LatencyBase, "fake Gemini: latency of every answer")
	fl.DurationVar(&cfg.Fake.LatencyPerPage, "fake-latency-per-page", load.DefaultFake.LatencyPerPage, "fake Gemini: added latency per page")
	fl.DurationVar(&cfg.Fake.LatencyJitter, "fake-latency-jitter", load.DefaultFake.LatencyJitter, "fake Gemini: uniform random latency added, up to this")
	fl.StringVar(&cfg.Fake.Faults, "fake-faults", "", "fake Gemini: fault probabilities kind=p,... as `quire fakegemini --faults` takes them")
	fl.IntVar(&cfg.Fake.RPM, "fake-rpm", 0, "fake Gemini: requests-per-minute quota (0: none)")
	fl.IntVar(&cfg.Fake.MaxConcurrent, "fake-max-concurrent", 0, "fake Gemini: calls in flight above this get 429 (0: no cap)")
	fl.DurationVar(&cfg.Fake.RetryDelay, "fake-retry-delay", 0, "fake Gemini: retryDelay of its 429s (default 1s)")
	fl.Float64Var(&cfg.Fake.Rate429, "rate-429", 0, "fake Gemini: share of calls answered 429 (rate-limit default 0.2 unless --fake-rpm)")
	fl.Float64Var(&cfg.Fake.DropRate, "drop-rate", 0, "fake Gemini: share of calls whose connection is closed unanswered (network-failure default 0.1)")
	fl.Float64Var(&cfg.Fake.HangRate, "hang-rate", 0, "fake Gemini: share of calls never answered (network-failure default 0.05)")
	fl.DurationVar(&cfg.CancelAfter, "cancel-after", 0, "cancel: cancel each job this long after it is seen running (default 200ms)")
	fl.DurationVar(&cfg.KillAfter, "kill-after", 0, "worker-crash: kill the node this long into the load (default: a third of it)")
	fl.StringVar(&scaleNodes, "scale-nodes", "", "scale: cluster sizes, comma-separated (default 1,2,4); clients and jobs are per node")
	fl.IntVar(&cfg.FillJobs, "fill-jobs", 0, "fairness: big jobs kept unfinished (default: enough to fill every slot twice)")
	fl.IntVar(&cfg.IdleRuns, "idle-runs", 0, "fairness: small jobs timed on the idle cluster first (default 3)")
	fl.StringVar(&jsonPath, "json", "", "write the report as JSON to this file")
	fl.StringVar(&htmlPath, "html", "", "write the report as an HTML page with plots to this file")
	fl.BoolVar(&quiet, "quiet", false, "no progress line and no log on stderr")
	fl.Float64Var(&minSuccess, "min-success", 0, "exit non-zero when the success rate is below this (0..1)")
	return cmd
}

// writeFile writes a file with write, reporting where it failed.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
