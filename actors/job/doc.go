// Package job is the JobActor, one per job, and the job's State.
//
// A job is an uploaded PDF split into chunks (page ranges) that are processed
// in parallel. Its event log (JobCreated, ChunksPlanned, ChunkStarted,
// ChunkDone, ChunkFailed, CancelRequested, JobFinished) is its only durable
// state: Replay folds the log into a State, which is how the JobActor resumes
// after a restart and how readers see a job without asking its actor.
package job
