package fakegemini

import (
	"encoding/hex"
	"net/http"
	"time"
)

// Stats is a snapshot of the fake's counters, as GET /stats returns it.
type Stats struct {
	// RequestsTotal counts generateContent requests received (malformed,
	// rejected and in-flight ones included).
	RequestsTotal int64 `json:"requests_total"`
	// Outcomes counts requests by how they were answered; every outcome is
	// present. A request whose client went away before its answer counts as
	// aborted. Hang counts requests chosen to hang: each of those also
	// counts as aborted once its client gives up (or as nothing more if
	// Close released it).
	Outcomes map[Outcome]int64 `json:"outcomes"`
	// ConcurrencyRejected and RPMRejected count the 429s of the concurrency
	// cap and of the RPM quota (also counted in rate_limited_429).
	ConcurrencyRejected int64 `json:"concurrency_rejected"`
	RPMRejected         int64 `json:"rpm_rejected"`
	// InFlight counts admitted requests not yet answered; PeakInFlight is
	// its highest value since the start or the last Reset.
	InFlight     int64 `json:"in_flight"`
	PeakInFlight int64 `json:"peak_in_flight"`
	// UniqueChunks counts distinct document payloads seen (see Chunks);
	// DuplicateChunks those seen more than once, and DuplicateRequests the
	// repeats (requests for a payload beyond its first).
	UniqueChunks      int64 `json:"unique_chunks"`
	DuplicateChunks   int64 `json:"duplicate_chunks"`
	DuplicateRequests int64 `json:"duplicate_requests"`
	// LastRequestStartedAt is when the last generateContent request came in.
	LastRequestStartedAt time.Time `json:"last_request_started_at,omitzero"`
	// PromptTokens and CandidatesTokens add up the usage metadata of the
	// answers given.
	PromptTokens     int64 `json:"prompt_tokens"`
	CandidatesTokens int64 `json:"candidates_tokens"`
	// FilesUploaded and FilesDeleted count Files API uploads finished and
	// deletions; FilesStored is how many files the fake holds now.
	FilesUploaded int64 `json:"files_uploaded"`
	FilesDeleted  int64 `json:"files_deleted"`
	FilesStored   int64 `json:"files_stored"`
	// Chunks holds, per payload, keyed by the first 16 hex digits of its
	// SHA-256 (the file's own SHA-256 for a single PDF), its counters.
	Chunks map[string]ChunkStats `json:"chunks"`
}

// ChunkStats are the counters of one document payload.
type ChunkStats struct {
	// Requests counts requests carrying the payload, Admitted those that
	// passed the concurrency cap and the RPM quota (the attempt numbers
	// that fates are drawn for).
	Requests int64 `json:"requests"`
	Admitted int64 `json:"admitted"`
	// Pages is the payload's page count.
	Pages int `json:"pages"`
	// Outcomes holds the non-zero outcome counts.
	Outcomes map[Outcome]int64 `json:"outcomes"`
}

// counters is what Stats is made from; guarded by Server.mu.
type counters struct {
	requests            int64
	outcomes            [numOutcomes]int64
	concurrencyRejected int64
	rpmRejected         int64
	inFlight            int64
	peakInFlight        int64
	lastStarted         time.Time
	promptTokens        int64
	candidatesTokens    int64
	filesUploaded       int64
	filesDeleted        int64
}

type chunkState struct {
	requests int64
	admitted int64
	pages    int
	outcomes [numOutcomes]int64
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.mu.stats
	st := Stats{
		RequestsTotal:        c.requests,
		Outcomes:             make(map[Outcome]int64, numOutcomes),
		ConcurrencyRejected:  c.concurrencyRejected,
		RPMRejected:          c.rpmRejected,
		InFlight:             c.inFlight,
		PeakInFlight:         c.peakInFlight,
		LastRequestStartedAt: c.lastStarted,
		PromptTokens:         c.promptTokens,
		CandidatesTokens:     c.candidatesTokens,
		FilesUploaded:        c.filesUploaded,
		FilesDeleted:         c.filesDeleted,
		FilesStored:          int64(len(s.mu.files)),
		Chunks:               make(map[string]ChunkStats, len(s.mu.chunks)),
	}
	for _, o := range Outcomes() {
		st.Outcomes[o] = c.outcomes[o]
	}
	for k, ch := range s.mu.chunks {
		st.UniqueChunks++
		if ch.requests > 1 {
			st.DuplicateChunks++
			st.DuplicateRequests += ch.requests - 1
		}
		cs := ChunkStats{Requests: ch.requests, Admitted: ch.admitted, Pages: ch.pages, Outcomes: map[Outcome]int64{}}
		for o, n := range ch.outcomes {
			if n > 0 {
				cs.Outcomes[Outcome(o)] = n
			}
		}
		st.Chunks[ChunkID(k)] = cs
	}
	return st
}

// ChunkID is the key of a payload in Stats.Chunks: the first 16 hex digits
// of sum, the SHA-256 of the payload (of the PDF, when it is one PDF).
func ChunkID(sum [32]byte) string {
	return hex.EncodeToString(sum[:8])
}

// recordLocked counts outcome o of a request, for its chunk too when key is
// not nil.
func (s *Server) recordLocked(key *chunkKey, o Outcome) {
	s.mu.stats.outcomes[o]++
	if key == nil {
		return
	}
	if ch := s.mu.chunks[*key]; ch != nil {
		ch.outcomes[o]++
	}
}

func (s *Server) record(key *chunkKey, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(key, o)
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, map[string]any{})
}
