package metrics

var (
	geminiInputTokens  = set.NewCounter(series("quire_gemini_tokens_total", "kind", "input"))
	geminiOutputTokens = set.NewCounter(series("quire_gemini_tokens_total", "kind", "output"))
)

func init() {
	for _, o := range geminiOutcomes {
		set.GetOrCreateCounter(series("quire_gemini_requests_total", "outcome", string(o)))
	}
}

// GeminiRequest counts one model call (generateContent) to the Gemini API
// that ended with outcome. An answer that is not the JSON asked for is ok
// here: the call worked; what became of the chunk is in
// quire_chunks_finished_total.
func GeminiRequest(outcome GeminiOutcome) {
	set.GetOrCreateCounter(series("quire_gemini_requests_total", "outcome", known(outcome, geminiOutcomes))).Inc()
}

// GeminiTokens counts the tokens of one answer, as its usage metadata says.
func GeminiTokens(input, output int64) {
	addPositive(geminiInputTokens, input)
	addPositive(geminiOutputTokens, output)
}
