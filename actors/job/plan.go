package job

import "github.com/quirehq/quire/messages"

// Plan splits pages 1..pages into chunks of at most chunkPages pages.
func Plan(pages, chunkPages int) []*messages.ChunkRange {
	if pages <= 0 || chunkPages <= 0 {
		return nil
	}
	chunks := make([]*messages.ChunkRange, 0, (pages+chunkPages-1)/chunkPages)
	for first := 1; first <= pages; first += chunkPages {
		last := min(first+chunkPages-1, pages)
		chunks = append(chunks, &messages.ChunkRange{Index: int32(len(chunks)), FirstPage: int32(first), LastPage: int32(last)})
	}
	return chunks
}
