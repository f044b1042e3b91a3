//go:build !unix

package pdf

import "github.com/tetratelabs/wazero/experimental"

// mmapAllocator is nil where there is no mmap: wazero's own allocator.
var mmapAllocator experimental.MemoryAllocator
