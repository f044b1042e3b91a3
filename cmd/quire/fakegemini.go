package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/bench/fakegemini"
)

func newFakeGeminiCmd() *cobra.Command {
	var addr, faults, failFirstKind string
	var cfg fakegemini.Config
	cmd := &cobra.Command{
		Use:   "fakegemini",
		Short: "Run a fake Gemini API (for tests and load): latency model, faults by rate, quotas",
		Long: `Run a fake of the Gemini API's generateContent and Files endpoints, for
tests and load tests. Point quire at it with GOOGLE_GEMINI_BASE_URL=http://ADDR
(and any GEMINI_API_KEY). GET /stats shows counters; POST /reset clears them.

Faults are probabilities by kind, e.g.
  --faults rate_limited_429=0.10,unavailable_503=0.05
Kinds: rate_limited_429 daily_quota_429 unavailable_503 internal_500 hang
malformed safety recitation invalid_400 denied_403 schema_mismatch.
Every flag has an environment twin (QUIRE_ + the flag in upper case).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			if faults != "" {
				fr, err := fakegemini.ParseFaultRates(faults)
				if err != nil {
					return fmt.Errorf("--faults: %w", err)
				}
				cfg.Faults = fr
			}
			if failFirstKind != "" {
				o, err := fakegemini.ParseOutcome(failFirstKind)
				if err != nil {
					return fmt.Errorf("--fail-first-kind: %w", err)
				}
				cfg.FailFirstKind = o
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return serveFake(cmd.Context(), addr, cfg, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8089", "listen address")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of faults and jitter (same seed, same outcomes)")
	fl.DurationVar(&cfg.LatencyBase, "latency-base", 500*time.Millisecond, "base latency of an answer")
	fl.DurationVar(&cfg.LatencyPerPage, "latency-per-page", 20*time.Millisecond, "added latency per PDF page")
	fl.DurationVar(&cfg.LatencyJitter, "latency-jitter", 100*time.Millisecond, "uniform random latency added, up to this")
	fl.StringVar(&faults, "faults", "", "fault probabilities, kind=p,... (see above)")
	fl.IntVar(&cfg.FailFirst, "fail-first", 0, "the first N attempts of each identical chunk fail with --fail-first-kind")
	fl.StringVar(&failFirstKind, "fail-first-kind", "", "the fault of --fail-first")
	fl.IntVar(&cfg.MaxConcurrent, "max-concurrent", 0, "requests in flight above this get 429 (0: no cap)")
	fl.IntVar(&cfg.RPM, "rpm", 0, "requests-per-minute quota (0: none)")
	fl.DurationVar(&cfg.RetryDelay, "retry-delay", time.Second, "retryDelay of injected and cap 429s")
	fl.StringVar(&cfg.APIKey, "api-key", "", "accept only this API key (default: any)")
	return cmd
}

func serveFake(ctx context.Context, addr string, cfg fakegemini.Config, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	fake := fakegemini.New(cfg)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "fake Gemini API on http://%s (seed %d): export GOOGLE_GEMINI_BASE_URL=http://%s GEMINI_API_KEY=fake\n", ln.Addr(), cfg.Seed, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fake.Close() // end hanging requests first, or Shutdown waits for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
