// Package gemini is the Extractor that sends each chunk of a PDF, as a PDF
// of the chunk's pages, with the job's prompt to a Google Gemini model
// (google.golang.org/genai, Gemini API backend) and returns the model's
// JSON answer.
//
// A chunk goes inline in the request, or through the Files API when it is
// large. With a job's JSON Schema the model is asked for structured output
// (responseJsonSchema); every answer is parsed and checked against the
// schema, and an unusable one gets one repair call (text only: the answer,
// what is wrong with it and the schema) before the chunk fails. Token usage
// is summed over the calls of a chunk.
//
// Gemini's errors are mapped to what a job should do: a per-minute 429 is
// retried no sooner than Gemini's retry delay (extract.RateLimited), a
// daily-quota 429, a 400, a 403, and answers stopped for safety or
// recitation fail the chunk (extract.Permanent) with a message meant for
// users, and server errors, dropped connections and timeouts are retried.
// Cancelling the chunk's context aborts its HTTP request.
//
// Every call first waits on the Extractor's Limiter, which keeps a node
// within its requests- and tokens-per-minute quota and backs off (AIMD)
// when 429s arrive.
package gemini
