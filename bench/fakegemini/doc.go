// Package fakegemini is a fake of the Gemini API (generativelanguage,
// v1beta) for tests, `quire fakegemini` and load benchmarks: an
// http.Handler that the real google.golang.org/genai SDK talks to when its
// base URL points at it (genai.HTTPOptions.BaseURL, or the
// GOOGLE_GEMINI_BASE_URL environment variable) with Backend
// genai.BackendGeminiAPI.
//
// A Server (the fake) answers:
//
//   - POST /v1beta/models/{model}:generateContent (and
//     :streamGenerateContent, as a single event): text, inlineData (base64)
//     and fileData parts; generationConfig's responseMimeType,
//     responseSchema (Gemini's Schema) and responseJsonSchema (JSON Schema).
//     The answer is a candidate with finishReason STOP whose text is JSON
//     satisfying the schema (objects with every property, arrays of 1-3
//     items, enums' first value, strings naming the page range), a small
//     {"pages","summary"} object for JSON without a schema, or plain text;
//     usageMetadata counts 258 tokens per PDF page (pdfcpu counts the pages;
//     1 when it cannot) plus a token per 4 bytes of prompt and answer.
//   - the Files API: POST /upload/v1beta/files (resumable upload: start,
//     then upload/finalize), GET and DELETE /v1beta/files/{id}, GET
//     /v1beta/files. Files are kept in memory; a fileData part naming one
//     uses its bytes, and one naming an unknown file is a 400.
//   - GET /stats (Stats as JSON) and POST /reset (Server.Reset).
//
// Each request is admitted, or refused with a 429, by a concurrency cap and
// a sliding-window requests-per-minute quota; an admitted one waits a
// latency (base + per page + jitter, cut short when the client goes away)
// and is answered according to its fate: OK or one of the faults of
// Outcome, drawn with the probabilities of Config.Faults. A fate depends
// only on Config.Seed, the SHA-256 of the request's documents (its chunk)
// and how many requests for the same chunk were admitted before, so a run
// gives the same outcomes per chunk whatever the order requests arrive in.
// Errors have Google's shape, {"error":{"code","message","status",
// "details"}}, which genai returns as a genai.APIError; 429s carry
// google.rpc.QuotaFailure and RetryInfo details.
//
// What it does not imitate: any understanding of the documents (answers are
// made from the schema and page count alone), other models methods
// (countTokens, embeddings, caching, batches), tools and function calls,
// multi-candidate answers, real token counting, streaming in several
// events, file expiry and processing states, API versions' differences,
// snake_case request fields, and the upload server's plain-text errors.
// Schemas are honored as documented on schemaGen (no pattern, for one).
// The quota 429s do not reset at midnight, and nothing is persisted.
package fakegemini
