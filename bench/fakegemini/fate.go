package fakegemini

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// A chunk key is the SHA-256 of a request's documents: of the single
// document's bytes when there is one (so it matches sha256sum of the file),
// of the documents' hashes in order when there are several, and of the
// prompt text when there is none. Identical chunks have equal keys.
type chunkKey [sha256.Size]byte

func documentsKey(docs []document, prompt string) chunkKey {
	switch len(docs) {
	case 0:
		return sha256.Sum256([]byte(prompt))
	case 1:
		return docs[0].sum
	}
	h := sha256.New()
	for _, d := range docs {
		h.Write(d.sum[:])
	}
	var k chunkKey
	h.Sum(k[:0])
	return k
}

// unit returns a number in [0, 1) that depends only on its arguments.
func unit(seed uint64, key chunkKey, attempt int, purpose string) float64 {
	var buf [8 + sha256.Size + 8]byte
	binary.LittleEndian.PutUint64(buf[0:], seed)
	copy(buf[8:], key[:])
	binary.LittleEndian.PutUint64(buf[8+sha256.Size:], uint64(attempt))
	h := sha256.New()
	h.Write(buf[:])
	h.Write([]byte(purpose))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return float64(binary.LittleEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// fate decides how the attempt-th admitted request (0 for the first) for
// chunk key is answered.
func (c Config) fate(key chunkKey, attempt int) Outcome {
	if attempt < c.FailFirst {
		return c.FailFirstKind
	}
	u := unit(c.Seed, key, attempt, "fault")
	var acc float64
	for _, o := range Outcomes() {
		acc += c.Faults.Rate(o)
		if p := c.Faults.Rate(o); p > 0 && u < acc {
			return o
		}
	}
	return OutcomeOK
}

// latency is how long the attempt-th request for key takes to answer.
func (c Config) latency(key chunkKey, attempt, pages int) time.Duration {
	d := c.LatencyBase + time.Duration(pages)*c.LatencyPerPage
	if c.LatencyJitter > 0 {
		d += time.Duration(unit(c.Seed, key, attempt, "jitter") * float64(c.LatencyJitter))
	}
	return d
}
