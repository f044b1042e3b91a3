package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with --pprof-addr
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/gemini"
	"github.com/quirehq/quire/actors/extract/text"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/httpapi"
	"github.com/quirehq/quire/persistence"
)

var _ httpapi.Backend = (*node.Node)(nil)

type serveFlags struct {
	dataDir         string
	httpAddr        string
	nodeName        string
	concurrency     int
	chunkPages      int
	creditsPerPage  int64
	maxUploadMB     int64
	maxPages        int
	maxAttempts     int
	chunkTimeout    time.Duration
	adminTokenFile  string
	demo            bool
	demoCredits     int64
	logLevel        string
	logFormat       string
	pprofAddr       string
	metricsToken    string
	geminiModel     string
	geminiRPM       int
	geminiTPM       int
	geminiInlineMB  int64
	gossipAddr      string
	remoteAddr      string
	join            []string
	advertiseURL    string
	clusterSecret   string
	ledgerNode      string // gone with the Raft group: refused with what to do
	bootstrapExpect int
	maxVoters       int
	drainTimeout    time.Duration
	gossipKeyFile   string // --gossip-key-file (quire keygen)
	// Limits (README, "Limits").
	rateLimitRPS         float64
	rateLimitBurst       int
	maxConcurrentUploads int
	maxActiveJobs        int
	idempotencyTTL       time.Duration
	// HTTP server limits (README, "HTTP server limits").
	readHeaderTimeout    time.Duration
	idleTimeout          time.Duration
	minUploadRateKbps    int64
	uploadGrace          time.Duration
	maxUploadsPerAccount int
	maxConnections       int
	maxLoginFailures     int
	sseHeartbeat         time.Duration
	// The legacy entry's sync path and the emergency switch (rollout.go).
	syncMaxPages    int
	syncTimeout     time.Duration
	asyncEnabled    bool
	asyncEnabledSet bool // given as a flag or QUIRE_ASYNC_ENABLED
	// Mutual TLS between nodes and the peer port (serve_cluster.go).
	security clusterSecurityFlags
	// Bounds on what one PDF may cost (README, "Hostile PDFs").
	pdfMemoryLimitMB int
	maxPageTextKB    int
	maxChunkOutputMB int
	// Poison jobs: --max-chunk-crashes (README, "Chunks that crash their node").
	maxChunkCrashes int
	// Disk full (README, "Disk full").
	minFreeDiskMB int64
}

func newServeCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Quire node",
		Long: `Run a Quire node: the REST API, the actors, and the store in --data-dir.

Every flag has an environment twin: --http-addr is QUIRE_HTTP_ADDR. Flags win.
The admin token comes from QUIRE_ADMIN_TOKEN or --admin-token-file; without
either, one is generated on first start, saved in <data-dir>/admin-token and
printed. On first start a demo account is created and its API key printed and
saved in <data-dir>/credentials.env (turn off with --demo=false).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			f.asyncEnabledSet = cmd.Flags().Changed("async-enabled")
			return serve(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	host, _ := os.Hostname()
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./data", "where the node keeps its store and uploaded PDFs")
	fl.StringVar(&f.httpAddr, "http-addr", ":8080", "address of the REST API")
	fl.StringVar(&f.nodeName, "node-name", host, "this node's name")
	fl.IntVar(&f.concurrency, "concurrency", node.DefaultConcurrency, "chunks in flight on this node")
	fl.IntVar(&f.chunkPages, "chunk-pages", node.DefaultChunkPages, "pages per chunk when a job does not say")
	fl.Int64Var(&f.creditsPerPage, "credits-per-page", node.DefaultCreditsPerPage, "credits reserved and charged per page")
	fl.Int64Var(&f.maxUploadMB, "max-upload-mb", 512, "largest PDF accepted, in MiB")
	fl.IntVar(&f.maxPages, "max-pages", 20000, "largest page count a job may have (0: no limit)")
	fl.IntVar(&f.maxAttempts, "max-attempts", node.DefaultMaxAttempts, "attempts per chunk before it fails for good")
	fl.DurationVar(&f.chunkTimeout, "chunk-timeout", node.DefaultChunkTimeout, "deadline of one attempt at one chunk")
	fl.IntVar(&f.maxChunkCrashes, "max-chunk-crashes", node.DefaultMaxChunkCrashes, "a chunk in flight at this many crashes of the node running it fails for good (pages refunded)")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin token (default: QUIRE_ADMIN_TOKEN, else generated)")
	fl.BoolVar(&f.demo, "demo", true, "on first start, create a demo account and print its key")
	fl.Int64Var(&f.demoCredits, "demo-credits", 100000, "credits of the demo account")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.StringVar(&f.geminiModel, "gemini-model", gemini.DefaultModel, "default Gemini model (a job may name its own)")
	fl.IntVar(&f.geminiRPM, "gemini-rpm", 0, "Gemini requests per minute this node may send (0: no limit)")
	fl.IntVar(&f.geminiTPM, "gemini-tpm", 0, "Gemini tokens per minute this node may send (0: no limit)")
	fl.Int64Var(&f.geminiInlineMB, "gemini-inline-max-mb", 15, "chunks larger than this go through Gemini's Files API instead of inline")
	fl.StringVar(&f.gossipAddr, "gossip-addr", "", "memberlist gossip address (host:port); set it to run in a cluster")
	fl.StringVar(&f.remoteAddr, "remote-addr", "", "actor-system (gRPC) address (host:port) the other nodes reach this one on")
	fl.StringSliceVar(&f.join, "join", nil, "gossip addresses of nodes to join (host:port,...)")
	fl.StringVar(&f.advertiseURL, "advertise-url", "", "this node's REST API as clients reach it, shown in the member list (default: from --http-addr)")
	fl.StringVar(&f.ledgerNode, "ledger-node", "", "gone: every node keeps a replica of the ledger (Raft)")
	_ = fl.MarkHidden("ledger-node")
	fl.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "how many servers form the Raft group the first time: give it to each of them; the group forms once that many see each other (default: 1 without --join, so a node alone is a one-voter group; with --join, the node waits to be added by the leader)")
	fl.IntVar(&f.maxVoters, "max-voters", 5, "most voters the Raft group has; further nodes join as non-voters")
	fl.StringVar(&f.clusterSecret, "cluster-secret", "", "secret the nodes of an --insecure-cluster present on each other's peer ports (default: derived from the admin token; unused with TLS)")
	fl.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "file of gossip encryption keys, base64, one per line, the first used to encrypt (make one with quire keygen; README: rotation); every node of the cluster needs one of its keys")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running chunks may take to finish")
	fl.IntVar(&f.syncMaxPages, "sync-max-pages", httpapi.DefaultSyncMaxPages, "largest PDF the legacy POST /v1/process processes synchronously (larger: 413)")
	fl.DurationVar(&f.syncTimeout, "sync-timeout", httpapi.DefaultSyncTimeout, "how long a synchronous POST /v1/process waits for its job; past it the job is cancelled and the unprocessed pages refunded (504)")
	fl.BoolVar(&f.asyncEnabled, "async-enabled", true, "when given, written into the cluster's rollout policy at start: false is the emergency switch (POST /v1/jobs answers 503, POST /v1/process runs synchronously); not given, the policy is left as it is")
	fl.Float64Var(&f.rateLimitRPS, "rate-limit-rps", 100, "requests per second an account may make on this node, token bucket (0: no limit); an account's own limits win (PUT /v1/admin/accounts/{id}/limits)")
	fl.IntVar(&f.rateLimitBurst, "rate-limit-burst", 200, "token bucket size of --rate-limit-rps: requests an account may make at once")
	fl.IntVar(&f.maxConcurrentUploads, "max-concurrent-uploads", 64, "uploads this node receives at once; more are answered 503 with Retry-After before their body is read (0: no limit)")
	fl.IntVar(&f.maxActiveJobs, "max-active-jobs", 1000, "unfinished jobs an account may have, cluster-wide, unless it has its own limit (0: no limit); more are answered 429")
	fl.DurationVar(&f.idempotencyTTL, "idempotency-ttl", node.DefaultIdempotencyTTL, "how long an Idempotency-Key names the job it made")
	// HTTP server limits.
	fl.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send a request's headers")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "how long a keep-alive connection may stay idle before it is closed")
	fl.Int64Var(&f.minUploadRateKbps, "min-upload-rate-kbps", 64, "least average pace of an upload body, in kbit/s, after --upload-grace; slower is cut off with 408 (0: no minimum)")
	fl.DurationVar(&f.uploadGrace, "upload-grace", 10*time.Second, "how long an upload body may take before --min-upload-rate-kbps applies")
	fl.IntVar(&f.maxUploadsPerAccount, "max-uploads-per-account", 8, "uploads of one account this node receives at once, below --max-concurrent-uploads; more are answered 429 with Retry-After before their body is read (0: no limit)")
	fl.IntVar(&f.maxConnections, "max-connections", 0, "HTTP connections this node holds open; at the limit the longest idle one is closed (0: 4096, or 3/4 of the open-file limit if lower)")
	fl.DurationVar(&f.sseHeartbeat, "sse-heartbeat", httpapi.DefaultSSEHeartbeat, "longest silence on an events stream (GET /v1/jobs/{id}/events): a comment line is sent after it so that proxies keep the stream open")
	fl.IntVar(&f.maxLoginFailures, "max-login-failures", 5, "failed admin logins (admin token, dashboard) in a row from one client address before it is answered 429; then one more every 12 s (0: no throttling)")
	fl.StringVar(&f.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof on this address (off when empty; keep it on loopback)")
	fl.Int64Var(&f.minFreeDiskMB, "min-free-disk-mb", persistence.DefaultMinFreeBytes>>20, "free space (MiB) the data disk keeps: below it new uploads are answered 507 before their body is read, and /readyz says 'disk nearly full' (0: no floor)")
	fl.StringVar(&f.metricsToken, "metrics-token", "", "when set, GET /metrics needs 'Authorization: Bearer <token>' (default: open, for Prometheus)")
	f.security.register(fl) // serve_cluster.go
	// Bounds on what one PDF may cost (README, "Hostile PDFs").
	fl.IntVar(&f.pdfMemoryLimitMB, "pdf-memory-limit-mb", pdf.DefaultMemoryLimitMB, "memory each PDF reader instance may use (MiB); a PDF that needs more fails (422 at upload, a failed chunk later) and its instance is replaced")
	fl.IntVar(&f.maxPageTextKB, "max-page-text-kb", pdf.DefaultMaxPageTextKB, "text one page may have (KiB); a page with more fails its chunk for good")
	fl.IntVar(&f.maxChunkOutputMB, "max-chunk-output-mb", node.DefaultMaxChunkOutputMB, "output one chunk may produce (MiB, under the 64 MiB node-to-node message limit); a chunk with more fails for good")
	return cmd
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json (got %q)", format)
}

func serve(ctx context.Context, f *serveFlags, out io.Writer) error {
	log, err := newLogger(f.logLevel, f.logFormat, os.Stderr)
	if err != nil {
		return err
	}
	if f.syncMaxPages < 1 || f.syncTimeout <= 0 {
		return fmt.Errorf("--sync-max-pages must be at least 1 and --sync-timeout positive (got %d, %s)", f.syncMaxPages, f.syncTimeout)
	}
	if f.maxUploadMB < 1 {
		return fmt.Errorf("--max-upload-mb must be at least 1 (got %d)", f.maxUploadMB)
	}
	if f.rateLimitRPS < 0 || f.rateLimitBurst < 0 || f.maxConcurrentUploads < 0 || f.maxActiveJobs < 0 || f.idempotencyTTL <= 0 {
		return fmt.Errorf("--rate-limit-rps, --rate-limit-burst, --max-concurrent-uploads and --max-active-jobs must not be negative, "+
			"and --idempotency-ttl must be positive (got %v, %d, %d, %d, %s)",
			f.rateLimitRPS, f.rateLimitBurst, f.maxConcurrentUploads, f.maxActiveJobs, f.idempotencyTTL)
	}
	if f.ledgerNode != "" {
		return errors.New("--ledger-node is gone: every node now keeps a replica of the ledger in a Raft group. " +
			"Start the servers that form the cluster with --bootstrap-expect N (or one node alone), the others with --join; README: \"Upgrading\"")
	}
	if f.bootstrapExpect < 0 || f.maxVoters < 1 {
		return fmt.Errorf("--bootstrap-expect must not be negative and --max-voters must be at least 1 (got %d and %d)", f.bootstrapExpect, f.maxVoters)
	}
	// Gossip encryption (--gossip-key-file): checked before anything starts.
	var gossipKeys [][]byte
	if f.gossipKeyFile != "" {
		if gossipKeys, err = cluster.ReadGossipKeyFile(f.gossipKeyFile); err != nil {
			return err
		}
		if f.gossipAddr == "" {
			return errors.New("--gossip-key-file is set but --gossip-addr is not: gossip keys are for a cluster")
		}
	}
	security, err := f.security.load(f.nodeName, f.gossipAddr, f.remoteAddr, f.join, f.gossipKeyFile != "", log) // serve_cluster.go
	if err != nil {
		return err
	}
	if err := f.validateHTTPLimits(); err != nil {
		return err
	}
	f.warnHTTPLimits(log)
	conns := httpapi.NewConnLimiter(maxConnections(f.maxConnections, raiseOpenFileLimit(log), log)) // limits.go
	if f.minFreeDiskMB < 0 {
		return fmt.Errorf("--min-free-disk-mb must not be negative (got %d)", f.minFreeDiskMB)
	}
	store, err := persistence.OpenWith(f.dataDir, log.With("component", "store"), persistence.Options{MinFreeBytes: f.minFreeDiskMB << 20})
	if err != nil {
		return err
	}
	defer store.Close()
	adminToken, generated, err := loadAdminToken(f)
	if err != nil {
		return err
	}
	if f.maxChunkOutputMB < 1 || f.maxChunkOutputMB > node.MaxChunkOutputMB {
		return fmt.Errorf("--max-chunk-output-mb must be between 1 and %d (got %d)", node.MaxChunkOutputMB, f.maxChunkOutputMB)
	}
	engine, err := pdf.NewEngine(pdf.Config{Instances: f.concurrency + 2, CacheDir: pdf.DefaultCacheDir(),
		MemoryLimitMB: f.pdfMemoryLimitMB, MaxPageTextKB: f.maxPageTextKB, Log: log.With("component", "pdf")})
	if err != nil {
		return err
	}
	defer engine.Close()
	extractors, err := newExtractors(ctx, f, engine, log)
	if err != nil {
		return err
	}
	extractors = extractors.LimitOutput(f.maxChunkOutputMB << 20)
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.httpAddr, err)
	}
	url := "http://" + displayAddr(ln.Addr())
	advertise := f.advertiseURL
	if advertise == "" {
		advertise = url
	}
	secret := f.clusterSecret
	if secret == "" {
		sum := sha256.Sum256([]byte("quire cluster secret\x00" + adminToken))
		secret = hex.EncodeToString(sum[:])
	}
	peers := security.peerClient(secret) // the one client of the other members' peer ports
	n, err := node.Start(ctx, node.Config{
		Name: f.nodeName, Store: store, Engine: engine,
		Extractors:  extractors,
		Concurrency: f.concurrency, ChunkPages: f.chunkPages, CreditsPerPage: f.creditsPerPage,
		MaxPages: f.maxPages, MaxAttempts: f.maxAttempts, ChunkTimeout: f.chunkTimeout,
		GossipAddr: f.gossipAddr, RemoteAddr: f.remoteAddr, Join: f.join, HTTPURL: advertise, ClusterSecret: secret,
		RaftAddr: security.raftAddr, BootstrapExpect: f.bootstrapExpect, MaxVoters: f.maxVoters, Log: log,
		GossipKeys: gossipKeys,
		PeerAddr:   security.peerAddr, TLS: security.tls, Peer: peers,
		MaxActiveJobs: f.maxActiveJobs, IdempotencyTTL: f.idempotencyTTL,
		MaxChunkCrashes: f.maxChunkCrashes,
	})
	if err != nil {
		return err
	}
	defer n.Close()
	if f.asyncEnabledSet {
		if err := applyAsyncEnabled(ctx, n, f.asyncEnabled, log); err != nil {
			return err
		}
	}

	api := httpapi.New(httpapi.Config{
		Backend: n, AdminToken: adminToken, MaxUploadBytes: f.maxUploadMB << 20, Version: version, Log: log,
		Legacy:       httpapi.LegacyConfig{MaxPages: f.syncMaxPages, Timeout: f.syncTimeout},
		RateLimitRPS: f.rateLimitRPS, RateLimitBurst: f.rateLimitBurst, MaxConcurrentUploads: f.maxConcurrentUploads,
		MetricsToken: f.metricsToken,
		// HTTP server limits (limits.go).
		MaxUploadsPerAccount: f.maxUploadsPerAccount, MinUploadBytesPerSecond: f.minUploadRateKbps * 1000 / 8, UploadGrace: f.uploadGrace,
		MaxLoginFailures: f.maxLoginFailures, SSEHeartbeat: f.sseHeartbeat,
		Peer: peers, ReadyWarnings: security.warnings,
	})
	peerSrv, peerErrc, err := security.servePeer(api, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: f.readHeaderTimeout, IdleTimeout: f.idleTimeout, ConnState: conns.ConnState}
	fmt.Fprintf(out, "Quire %s: node %q serving %s (data in %s)\n", version, f.nodeName, url, f.dataDir)
	if generated {
		fmt.Fprintf(out, "  admin token:  %s  (generated; saved in %s)\n", adminToken, filepath.Join(f.dataDir, "admin-token"))
	}
	switch {
	case f.gossipAddr == "":
		fmt.Fprintf(out, "  ledger:       a one-voter Raft group on this node\n")
	case len(f.join) == 0 || f.bootstrapExpect > 0:
		fmt.Fprintf(out, "  ledger:       replicated (Raft at %s); the group forms once %d servers see each other\n", security.raftAddr, max(f.bootstrapExpect, 1))
	default:
		fmt.Fprintf(out, "  ledger:       replicated (Raft at %s); this node waits to be added to the group by its leader\n", security.raftAddr)
	}
	if len(f.join) > 0 {
		if err := writeNodeCredentials(f, adminToken, generated, url, out); err != nil {
			return err
		}
	} else if f.demo {
		if err := ensureDemo(ctx, n, f, adminToken, generated, url, out); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "  API docs:     %s/docs\n", url)
	fmt.Fprintf(out, "  dashboard:    %s/dashboard   (log in with the admin token)\n", url)

	if f.pprofAddr != "" {
		go func() {
			// http.DefaultServeMux carries net/http/pprof's handlers.
			if err := http.ListenAndServe(f.pprofAddr, nil); err != nil {
				log.Error("pprof server", "err", err)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(conns.Listener(ln)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case err := <-peerErrc: // nil when not clustered: never ready
		return fmt.Errorf("peer server: %w", err)
	case <-ctx.Done():
	}
	if f.gossipAddr != "" {
		log.Info("shutting down: draining")
		// Stop taking chunks (the others see it in gossip), let those running
		// finish, then leave; this node's unfinished jobs resume at its next
		// start. A node on its own just stops: its jobs resume likewise.
		dctx, dcancel := context.WithTimeout(context.Background(), f.drainTimeout)
		if err := n.Drain(dctx); err != nil {
			log.Warn("drain", "err", err)
		}
		if err := n.WaitIdle(dctx); err != nil {
			log.Warn("chunks still running at the drain deadline; they are placed again elsewhere", "err", err)
		}
		dcancel()
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if peerSrv != nil {
		if err := peerSrv.Shutdown(shutdownCtx); err != nil {
			log.Warn("peer port shutdown", "err", err)
		}
	}
	return nil
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// loadAdminToken reads the admin token: QUIRE_ADMIN_TOKEN, --admin-token-file,
// or <data-dir>/admin-token, generating and saving that last one if needed.
func loadAdminToken(f *serveFlags) (token string, generated bool, err error) {
	if t := strings.TrimSpace(os.Getenv("QUIRE_ADMIN_TOKEN")); t != "" {
		return t, false, checkAdminToken(t, "QUIRE_ADMIN_TOKEN")
	}
	path := f.adminTokenFile
	if path == "" {
		path = filepath.Join(f.dataDir, "admin-token")
	}
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", false, fmt.Errorf("admin token file %s is empty", path)
		}
		return t, false, checkAdminToken(t, "the admin token in "+path)
	}
	if !errors.Is(err, os.ErrNotExist) || f.adminTokenFile != "" {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	token = "qa_" + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save admin token: %w", err)
	}
	return token, true, nil
}

// writeNodeCredentials writes credentials.env on a node that does not hold
// the ledger: its URL (and admin token when generated), but no API key: the
// demo account, if any, is the ledger node's.
func writeNodeCredentials(f *serveFlags, adminToken string, tokenGenerated bool, url string, out io.Writer) error {
	credPath := filepath.Join(f.dataDir, "credentials.env")
	env := fmt.Sprintf("export QUIRE_URL=%s\n", url)
	if tokenGenerated {
		env += fmt.Sprintf("export QUIRE_ADMIN_TOKEN=%s\n", adminToken)
	}
	if err := os.WriteFile(credPath, []byte(env), 0o600); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	fmt.Fprintf(out, "  credentials:  . %s   (sets QUIRE_URL; API keys come from the ledger node's accounts)\n", credPath)
	return nil
}

// ensureDemo creates the demo account on a node that has no account yet.
func ensureDemo(ctx context.Context, n *node.Node, f *serveFlags, adminToken string, tokenGenerated bool, url string, out io.Writer) error {
	credPath := filepath.Join(f.dataDir, "credentials.env")
	if err := n.WaitLedger(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("create demo account: %w", err)
	}
	seq, err := n.Store().AccountSeq()
	if err != nil {
		return err
	}
	if seq > 0 {
		if _, err := os.Stat(credPath); err == nil {
			fmt.Fprintf(out, "  credentials:  . %s   (sets QUIRE_API_KEY, QUIRE_ADMIN_TOKEN, QUIRE_URL)\n", credPath)
		}
		return nil
	}
	acct, err := n.CreateAccount(ctx, "demo", f.demoCredits)
	if err != nil {
		return fmt.Errorf("create demo account: %w", err)
	}
	env := fmt.Sprintf("export QUIRE_URL=%s\nexport QUIRE_API_KEY=%s\n", url, acct.APIKey)
	if tokenGenerated {
		env += fmt.Sprintf("export QUIRE_ADMIN_TOKEN=%s\n", adminToken)
	}
	if err := os.WriteFile(credPath, []byte(env), 0o600); err != nil {
		return fmt.Errorf("save demo credentials: %w", err)
	}
	fmt.Fprintf(out, "  demo API key: %s  (account %d \"demo\", id %s, %d credits)\n", acct.APIKey, acct.Account.GetNumber(), acct.Account.GetId(), f.demoCredits)
	sets := "QUIRE_API_KEY, QUIRE_URL"
	if tokenGenerated {
		sets = "QUIRE_API_KEY, QUIRE_ADMIN_TOKEN, QUIRE_URL"
	}
	fmt.Fprintf(out, "  credentials:  . %s   (sets %s)\n", credPath, sets)
	return nil
}

// newExtractors offers the text extractor always, and the gemini extractor
// when an API key is set (GEMINI_API_KEY or GOOGLE_API_KEY; the SDK's
// GOOGLE_GEMINI_BASE_URL points it elsewhere, e.g. at quire fakegemini).
func newExtractors(ctx context.Context, f *serveFlags, engine *pdf.Engine, log *slog.Logger) (extract.Registry, error) {
	xs := []extract.Extractor{text.New(engine)}
	key := os.Getenv("GEMINI_API_KEY")
	if key == "" {
		key = os.Getenv("GOOGLE_API_KEY")
	}
	if key == "" {
		log.Info("gemini extractor off: set GEMINI_API_KEY (or GOOGLE_API_KEY) to turn it on")
		return extract.NewRegistry(xs...), nil
	}
	g, err := gemini.New(ctx, gemini.Config{
		APIKey: key, Model: f.geminiModel, RPM: f.geminiRPM, TPM: f.geminiTPM,
		InlineMaxBytes: f.geminiInlineMB << 20, Cutter: pdf.NewCutter(2 * f.concurrency),
		Log: log.With("component", "gemini"),
	})
	if err != nil {
		return nil, fmt.Errorf("gemini extractor: %w", err)
	}
	log.Info("gemini extractor on", "model", f.geminiModel, "rpm", f.geminiRPM, "tpm", f.geminiTPM,
		"base_url", os.Getenv("GOOGLE_GEMINI_BASE_URL"))
	return extract.NewRegistry(append(xs, g)...), nil
}
