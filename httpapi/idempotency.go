package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header
// Field") on the job entries, POST /v1/jobs and POST /v1/process. A key
// belongs to the account and is kept by the ledger for the whole cluster
// (actors/ledger/idempotency.go) for --idempotency-ttl. A request with a key
// is received whole, fingerprinted (the file's SHA-256 and the form fields),
// and then:
//   - the key's first request makes the job, which records the key;
//   - the same key and fingerprint again: 202 with the same job (read on the
//     node that has it) and Idempotent-Replayed: true; nothing is reserved
//     and the upload is discarded;
//   - the same key with another fingerprint: 422;
//   - the same key while its first request is still being accepted: 409
//     with Retry-After.

const (
	// IdempotencyKeyHeader is the request header that carries the key.
	IdempotencyKeyHeader = "Idempotency-Key"
	// IdempotentReplayedHeader marks an answer replayed for a key.
	IdempotentReplayedHeader = "Idempotent-Replayed"
	// maxIdempotencyKey is the longest key accepted.
	maxIdempotencyKey = 255
	// idemInProgressRetry is the Retry-After of a 409 for a key in use.
	idemInProgressRetry = "1"
)

// idempotencyKey reads the request's Idempotency-Key: "" when there is none,
// a 400 problem when it is not 1 to 255 printable ASCII characters. The
// draft's structured-field form ("...", quoted) is accepted too.
func idempotencyKey(hctx huma.Context) (string, error) {
	v := hctx.Header(IdempotencyKeyHeader)
	if v == "" {
		return "", nil
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	bad := len(v) == 0 || len(v) > maxIdempotencyKey
	for i := 0; i < len(v) && !bad; i++ {
		bad = v[i] < 0x20 || v[i] > 0x7e
	}
	if bad {
		return "", huma.Error400BadRequest(fmt.Sprintf(
			"the %s header must be 1 to %d printable ASCII characters", IdempotencyKeyHeader, maxIdempotencyKey))
	}
	return v, nil
}

// requestFingerprint is the SHA-256 of what makes two job requests the same:
// the file's SHA-256 and the form fields, each named and length-prefixed.
func requestFingerprint(s node.Submission) []byte {
	h := sha256.New()
	extractor := s.Extractor
	if extractor == "" {
		extractor = "text"
	}
	for _, f := range [][2]string{
		{"file_sha256", s.Upload.SHA256()}, {"extractor", extractor}, {"prompt", s.Prompt},
		{"schema", s.Schema}, {"chunk_pages", strconv.Itoa(s.ChunkPages)}, {"model", s.Model},
	} {
		fmt.Fprintf(h, "%s %d %s\n", f[0], len(f[1]), f[1])
	}
	return h.Sum(nil)
}

// submitOnce submits s as a job, honouring the request's Idempotency-Key:
// without one it is Backend.Submit. With one, it claims the key first; when
// the key has made its job already, that job is the answer (replayed, with
// Idempotent-Replayed: true set on hctx, and s's upload is discarded); else
// the job is made and records the key. Errors are huma problems or the
// errors of the layers below, for problem.
func (a *API) submitOnce(ctx context.Context, hctx huma.Context, s node.Submission) (st *job.State, replayed *Job, err error) {
	key, err := idempotencyKey(hctx)
	if err != nil {
		s.Upload.Abort()
		return nil, nil, err
	}
	if key == "" {
		st, err := a.cfg.Backend.Submit(ctx, s)
		return st, nil, err
	}
	acct := s.Account.GetId()
	sum := requestFingerprint(s)
	claim, err := a.cfg.Backend.ClaimIdempotency(ctx, acct, key, sum)
	if err != nil {
		s.Upload.Abort()
		return nil, nil, err
	}
	switch claim.GetOutcome() {
	case messages.IdempotencyClaim_OUTCOME_CLAIMED:
	case messages.IdempotencyClaim_OUTCOME_REPLAY:
		s.Upload.Abort()
		v, err := a.replayedJob(ctx, hctx, acct, claim)
		if err != nil {
			return nil, nil, err
		}
		hctx.SetHeader(IdempotentReplayedHeader, "true")
		a.cfg.Log.Info("idempotent request replayed", "job", v.ID, "account", acct)
		return nil, v, nil
	case messages.IdempotencyClaim_OUTCOME_MISMATCH:
		s.Upload.Abort()
		return nil, nil, huma.Error422UnprocessableEntity(fmt.Sprintf(
			"this %s was used with another request (another file or other fields), which made job %s; use a new key for a new request",
			IdempotencyKeyHeader, claim.GetJobId()))
	case messages.IdempotencyClaim_OUTCOME_IN_PROGRESS:
		s.Upload.Abort()
		return nil, nil, huma.ErrorWithHeaders(huma.Error409Conflict(
			"a request with this "+IdempotencyKeyHeader+" is still being accepted; retry to get its job"),
			http.Header{"Retry-After": {idemInProgressRetry}})
	default:
		s.Upload.Abort()
		return nil, nil, fmt.Errorf("httpapi: unexpected idempotency claim outcome %v", claim.GetOutcome())
	}
	s.IdempotencyKey, s.RequestSHA256 = key, sum
	st, err = a.cfg.Backend.Submit(ctx, s)
	if err != nil {
		// No job: let a retry with the key go on at once (the ledger has
		// ended the claim already if the reservation reached it).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if rerr := a.cfg.Backend.ReleaseIdempotency(rctx, acct, key); rerr != nil {
			a.cfg.Log.Warn("release idempotency key", "account", acct, "err", rerr)
		}
		cancel()
		return nil, nil, err
	}
	return st, nil, nil
}

// errNotRecorded answers a key whose job was accepted by the ledger but never
// recorded by its node (the node failed in between; the credits were given
// back).
func errNotRecorded(id string) error {
	return huma.Error409Conflict(fmt.Sprintf("the request with this %s was accepted as job %s, but the job was never recorded "+
		"(its credits were not charged); send the request again with a new key", IdempotencyKeyHeader, id))
}

// replayedJob reads the job a key made: here if this node has it, else from
// its owner node, with the caller's credentials.
func (a *API) replayedJob(ctx context.Context, hctx huma.Context, account string, claim *messages.IdempotencyClaim) (*Job, error) {
	id := claim.GetJobId()
	if a.cfg.Backend.HasJob(id) {
		st, err := a.cfg.Backend.Job(ctx, account, id)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		v := jobView(st)
		return &v, nil
	}
	peers := a.peers(ctx)
	base := ""
	for _, m := range peers {
		if m.Name == claim.GetOwnerNode() {
			base = m.PeerAddr
		}
	}
	if base == "" && claim.GetOwnerNode() == a.cfg.Backend.Name() {
		return nil, errNotRecorded(id)
	}
	if base == "" { // the owner is not a live member now, or moved: ask them all
		var err error
		if base, err = a.owner(ctx, id, peers); err != nil {
			a.cfg.Log.Warn("idempotency: find the job's node", "job", id, "err", err)
			return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(
				"the job of this "+IdempotencyKeyHeader+" is on another node, which cannot be asked now"),
				http.Header{"Retry-After": {"5"}})
		}
		if base == "" {
			return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(fmt.Sprintf(
				"the job of this %s is on node %s, which is not in the cluster now", IdempotencyKeyHeader, claim.GetOwnerNode())),
				http.Header{"Retry-After": {"5"}})
		}
	}
	return a.fetchJob(ctx, hctx, base, id)
}

// fetchJob reads GET /v1/jobs/{id} on another node (its peer port) as the caller.
func (a *API) fetchJob(ctx context.Context, hctx huma.Context, peerAddr, id string) (*Job, error) {
	unavailable := func(err error) error {
		a.cfg.Log.Warn("idempotency: ask the job's node", "job", id, "err", err)
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(
			"the job of this "+IdempotencyKeyHeader+" is on another node, which did not answer"),
			http.Header{"Retry-After": {"5"}})
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := a.peer.NewRequest(ctx, http.MethodGet, peerAddr, "/v1/jobs/"+id, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	req.Header.Set("Authorization", hctx.Header("Authorization"))
	req.Header.Set(ForwardedHeader, a.cfg.Backend.Name())
	res, err := a.peer.Do(req)
	if err != nil {
		return nil, unavailable(err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		var v Job
		if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&v); err != nil {
			return nil, unavailable(fmt.Errorf("decode its answer: %w", err))
		}
		return &v, nil
	case http.StatusNotFound:
		return nil, errNotRecorded(id)
	}
	return nil, unavailable(errors.New("it answered " + res.Status))
}

// documentIdempotencyKey adds the Idempotency-Key header and the replay
// marker to a job entry's OpenAPI operation.
func documentIdempotencyKey(op *huma.Operation) {
	op.Parameters = append(op.Parameters, &huma.Param{
		Name: IdempotencyKeyHeader, In: "header",
		Description: "1 to 255 printable ASCII characters, unique per request the client means once. The same key with the same file and fields " +
			"answers with the job the first request made (Idempotent-Replayed: true, nothing reserved again); with another file or fields: 422; " +
			"while the first request is still being accepted: 409. Keys expire after the node's --idempotency-ttl (default 24h).",
		Schema: &huma.Schema{Type: "string", MinLength: new(1), MaxLength: new(maxIdempotencyKey)},
	})
}
