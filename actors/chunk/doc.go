// Package chunk is the ChunkActor: one attempt at one chunk (a page range of
// a job's PDF). It runs the job's Extractor under a deadline, turns a panic in
// the extractor into a failed (retryable) attempt, reports a ChunkResult to
// its parent, which then stops it. Stopping it cancels the extractor's context.
package chunk
