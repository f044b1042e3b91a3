package load

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/quirehq/quire/bench/fakegemini"
)

// The scenarios.
const (
	ScenarioSmall          = "small"
	ScenarioMedium         = "medium"
	ScenarioLarge          = "large"
	ScenarioMixed          = "mixed"
	ScenarioCreate         = "create"
	ScenarioCancel         = "cancel"
	ScenarioNetworkFailure = "network-failure"
	ScenarioRateLimit      = "rate-limit"
	ScenarioWorkerCrash    = "worker-crash"
	ScenarioScale          = "scale"
	ScenarioFairness       = "fairness"
)

// Extractors a run can ask for.
const (
	ExtractorText   = "text"
	ExtractorGemini = "gemini"
)

// Scenarios lists every scenario with what it does, in the order `quire
// bench --help` shows them.
func Scenarios() [][2]string {
	return [][2]string{
		{ScenarioSmall, "closed loop of one-chunk PDFs (<30 pages; generated: 20)"},
		{ScenarioMedium, "closed loop of 50-100-page PDFs (from --pdfs: 30-299; generated: 80)"},
		{ScenarioLarge, "closed loop of 300+-page PDFs (generated: 300)"},
		{ScenarioMixed, "closed loop of a realistic mix: 60% small, 30% medium, 10% large"},
		{ScenarioCreate, "job creation latency under concurrency (jobs cancelled once created)"},
		{ScenarioCancel, "cancel mid-processing: time to cancelled, Gemini calls after it, exact refunds"},
		{ScenarioNetworkFailure, "the fake drops (--drop-rate) or hangs (--hang-rate) a share of calls"},
		{ScenarioRateLimit, "the fake answers 429 at a rate (--rate-429) or beyond a quota (--fake-rpm)"},
		{ScenarioWorkerCrash, "SIGKILL one node (not the first) mid-run; local clusters of 2+ nodes"},
		{ScenarioScale, "the same load per node on 1, 2, 4 nodes (--scale-nodes); efficiency"},
		{ScenarioFairness, "small jobs while big jobs of another account fill every slot, against idle"},
	}
}

// Config says what a run does. Zero fields take the scenario's defaults (see
// Resolve); Validate says what is wrong with the result.
type Config struct {
	// Scenario is one of Scenarios.
	Scenario string

	// Target is the REST API of a running cluster; "" starts a local one.
	Target string
	// AdminToken creates the run's accounts and reads GET /v1/admin/cluster
	// (queue depth over time). A local cluster makes its own.
	AdminToken string
	// APIKey is an existing account to submit with, instead of new ones.
	APIKey string

	// Binary is the quire binary local nodes run; "" is this executable.
	Binary string
	// Nodes is the size of the local cluster (default 1; worker-crash 3).
	Nodes int
	// Slots is the --concurrency of each local node (default 8).
	Slots int
	// ChunkTimeout and MaxAttempts are passed to local nodes when set
	// (network-failure defaults to a 10 s chunk timeout, so a hung call
	// costs that, not the node's 2 minutes).
	ChunkTimeout time.Duration
	MaxAttempts  int
	// ServeArgs are more `quire serve` flags for every local node.
	ServeArgs []string
	// WorkDir holds generated PDFs and the local nodes' data dirs; "" is a
	// new temporary directory, removed at the end unless Keep.
	WorkDir string
	Keep    bool

	// Clients is how many clients run concurrently (default 4).
	Clients int
	// Accounts is how many accounts the clients of a closed loop share
	// (default: one per client, as a node limits each account's requests
	// per second); fairness has one for its small jobs and one for its big
	// ones. With APIKey, every client uses that account.
	Accounts int
	// Jobs is how many jobs the clients submit in all; when 0, they submit
	// for Duration (default 30 s), and the run ends when the last job ends.
	Jobs     int
	Duration time.Duration
	// Extractor is text or gemini; "" is gemini on a local cluster (against
	// the fake) and text against a Target.
	Extractor string
	// ChunkPages is the chunk_pages jobs ask for; 0 is the scenario's
	// default (cancel, worker-crash, scale: 10) or else the node's.
	ChunkPages int
	// PDFDir holds real PDFs to submit; "" generates them.
	PDFDir string
	// Pages is the page count of every generated PDF; 0 is the scenario's.
	Pages int
	// Seed makes the choice of PDFs, the fake's faults and its drops
	// reproducible.
	Seed uint64
	// Poll is how often a client asks for its job (default 100 ms).
	Poll time.Duration
	// JobTimeout is how long a job may take before the run cancels it and
	// counts it as failed (default 30 min).
	JobTimeout time.Duration
	// Sample is how often the cluster's load and queue are sampled
	// (default 500 ms).
	Sample time.Duration
	// Credits is what each new account is given (default 1e12).
	Credits int64

	// Fake configures the fake Gemini API of a local cluster. Against a
	// Target its latencies, when given, are the floor of gemini runs.
	Fake FakeConfig

	// CancelAfter: the cancel scenario cancels a job this long after it
	// is first seen running (default 200 ms).
	CancelAfter time.Duration
	// KillAfter: worker-crash kills a node this long after the load starts
	// (default: a third of Duration, or once a third of Jobs were created),
	// waiting until it runs chunks.
	KillAfter time.Duration
	// ScaleNodes are the cluster sizes of the scale scenario (default
	// 1,2,4); each runs Clients and Jobs per node.
	ScaleNodes []int
	// FillJobs is how many big jobs fairness keeps unfinished (default:
	// enough to fill every slot twice over). IdleRuns is how many small jobs
	// it times on the idle cluster first (default 3).
	FillJobs int
	IdleRuns int

	// Progress receives a live progress line (rewritten in place when
	// ProgressTTY); nil shows none.
	Progress    io.Writer
	ProgressTTY bool
	// Log receives what the run is doing (cluster started, node killed);
	// nil is io.Discard.
	Log io.Writer
}

// FakeConfig is the fake Gemini API a local cluster talks to.
type FakeConfig struct {
	// An answer takes LatencyBase + LatencyPerPage × pages + a uniform
	// jitter in [0, LatencyJitter).
	LatencyBase    time.Duration
	LatencyPerPage time.Duration
	LatencyJitter  time.Duration
	// Faults are fault probabilities as `quire fakegemini --faults` takes
	// them, e.g. "unavailable_503=0.05,denied_403=0.01".
	Faults string
	// Rate429 is the probability of a per-minute 429 (rate-limit default
	// 0.2 unless RPM is set).
	Rate429 float64
	// RPM is a requests-per-minute quota; MaxConcurrent caps the calls in
	// flight; RetryDelay is the retryDelay of their 429s.
	RPM           int
	MaxConcurrent int
	RetryDelay    time.Duration
	// HangRate is the probability that a call never answers (until the
	// node's chunk timeout); DropRate that its connection is closed
	// without an answer. network-failure defaults to 0.1 dropped and 0.05
	// hung unless either is set.
	HangRate float64
	DropRate float64
	// Set says the latencies above were given; when false, Resolve puts
	// DefaultFake's in. Against a Target, given latencies are the floor of
	// gemini runs (the run cannot see the target's Gemini).
	Set bool
}

// DefaultFake is the fake's latency model when a run does not set one.
var DefaultFake = FakeConfig{LatencyBase: 500 * time.Millisecond, LatencyPerPage: 20 * time.Millisecond, LatencyJitter: 100 * time.Millisecond}

// Resolve returns c with the scenario's defaults filled in.
func (c Config) Resolve() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	c.Target = strings.TrimRight(c.Target, "/")
	if c.Scenario == ScenarioWorkerCrash {
		def(&c.Nodes, 3)
	}
	def(&c.Nodes, 1)
	def(&c.Slots, 8)
	def(&c.Clients, 4)
	if c.Jobs == 0 {
		defDur(&c.Duration, 30*time.Second)
	}
	if c.Extractor == "" {
		c.Extractor = ExtractorGemini
		if c.Target != "" {
			c.Extractor = ExtractorText
		}
	}
	switch c.Scenario {
	case ScenarioCancel, ScenarioWorkerCrash, ScenarioScale:
		def(&c.ChunkPages, 10)
	}
	defDur(&c.Poll, 100*time.Millisecond)
	defDur(&c.JobTimeout, 30*time.Minute)
	defDur(&c.Sample, 500*time.Millisecond)
	if c.Credits == 0 {
		c.Credits = 1_000_000_000_000
	}
	if !c.Fake.Set {
		c.Fake.LatencyBase, c.Fake.LatencyPerPage, c.Fake.LatencyJitter = DefaultFake.LatencyBase, DefaultFake.LatencyPerPage, DefaultFake.LatencyJitter
	}
	switch c.Scenario {
	case ScenarioNetworkFailure:
		if c.Fake.HangRate == 0 && c.Fake.DropRate == 0 {
			c.Fake.HangRate, c.Fake.DropRate = 0.05, 0.1
		}
		defDur(&c.ChunkTimeout, 10*time.Second)
	case ScenarioRateLimit:
		if c.Fake.Rate429 == 0 && c.Fake.RPM == 0 {
			c.Fake.Rate429 = 0.2
		}
	case ScenarioCancel:
		defDur(&c.CancelAfter, 200*time.Millisecond)
	case ScenarioScale:
		if len(c.ScaleNodes) == 0 {
			c.ScaleNodes = []int{1, 2, 4}
		}
	case ScenarioFairness:
		def(&c.IdleRuns, 3)
	}
	return c
}

// Local reports whether the run starts its own cluster.
func (c Config) Local() bool { return c.Target == "" }

// Validate says, in plain words, what is wrong with c (after Resolve).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.ContainsFunc(Scenarios(), func(s [2]string) bool { return s[0] == c.Scenario }) {
		var names []string
		for _, s := range Scenarios() {
			names = append(names, s[0])
		}
		bad("unknown scenario %q (one of %s)", c.Scenario, strings.Join(names, ", "))
	}
	if c.Extractor != ExtractorText && c.Extractor != ExtractorGemini {
		bad("the extractor must be text or gemini (got %q)", c.Extractor)
	}
	if c.Accounts < 0 {
		bad("accounts must not be negative (got %d)", c.Accounts)
	}
	if c.Nodes < 1 || c.Slots < 1 || c.Clients < 1 {
		bad("nodes, slots and clients must be at least 1 (got %d, %d, %d)", c.Nodes, c.Slots, c.Clients)
	}
	if c.Jobs < 0 || c.Duration < 0 {
		bad("jobs and duration must not be negative (got %d, %s)", c.Jobs, c.Duration)
	}
	if c.Pages < 0 || c.ChunkPages < 0 {
		bad("pages and chunk pages must not be negative (got %d, %d)", c.Pages, c.ChunkPages)
	}
	if c.PDFDir != "" && c.Pages != 0 {
		bad("give either a folder of PDFs or a page count for generated ones, not both")
	}
	if c.Poll <= 0 || c.Sample <= 0 || c.JobTimeout <= 0 {
		bad("poll, sample and job timeout must be positive")
	}
	if c.Credits < 1 {
		bad("accounts need at least 1 credit (got %d)", c.Credits)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"drop rate", c.Fake.DropRate}, {"hang rate", c.Fake.HangRate}, {"429 rate", c.Fake.Rate429}} {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 1 {
			bad("the %s must be between 0 and 1 (got %v)", p.name, p.v)
		}
	}
	if _, err := c.fakeConfig(); err != nil {
		bad("fake Gemini: %v", err)
	}
	local := c.Local()
	if !local {
		if c.AdminToken == "" && c.APIKey == "" {
			bad("--target needs an admin token (to create an account) or an API key (to use an existing one)")
		}
		switch c.Scenario {
		case ScenarioWorkerCrash, ScenarioScale:
			bad("%s starts and kills nodes: run it without a target", c.Scenario)
		case ScenarioNetworkFailure, ScenarioRateLimit:
			bad("%s sets the faults of the fake Gemini API that bench starts: run it without a target", c.Scenario)
		}
	}
	switch c.Scenario {
	case ScenarioNetworkFailure, ScenarioRateLimit, ScenarioCancel:
		if c.Extractor != ExtractorGemini {
			bad("%s needs the gemini extractor", c.Scenario)
		}
	case ScenarioWorkerCrash:
		if c.Nodes < 2 {
			bad("worker-crash needs at least 2 nodes (got %d): it kills one that is not the first", c.Nodes)
		}
	case ScenarioScale:
		for _, n := range c.ScaleNodes {
			if n < 1 {
				bad("scale: cluster sizes must be at least 1 (got %v)", c.ScaleNodes)
				break
			}
		}
	}
	if c.CancelAfter < 0 || c.KillAfter < 0 {
		bad("cancel-after and kill-after must not be negative")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// fakeConfig is the fake Gemini server's configuration.
func (c Config) fakeConfig() (fakegemini.Config, error) {
	faults, err := fakegemini.ParseFaultRates(c.Fake.Faults)
	if err != nil {
		return fakegemini.Config{}, err
	}
	if c.Fake.Rate429 > 0 {
		faults.RateLimited = c.Fake.Rate429
	}
	if c.Fake.HangRate > 0 {
		faults.Hang = c.Fake.HangRate
	}
	fc := fakegemini.Config{
		Seed:        c.Seed,
		LatencyBase: c.Fake.LatencyBase, LatencyPerPage: c.Fake.LatencyPerPage, LatencyJitter: c.Fake.LatencyJitter,
		Faults: faults, RPM: c.Fake.RPM, MaxConcurrent: c.Fake.MaxConcurrent, RetryDelay: c.Fake.RetryDelay,
		APIKey: fakeAPIKey,
	}
	return fc, fc.Validate()
}

// chunkLatency is the fake's mean latency for a chunk of pages pages: what
// a gemini chunk costs before Quire adds anything.
func (f FakeConfig) chunkLatency(pages int) time.Duration {
	return f.LatencyBase + time.Duration(pages)*f.LatencyPerPage + f.LatencyJitter/2
}
