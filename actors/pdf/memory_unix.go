//go:build unix

package pdf

import (
	"sync"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapAllocator backs each instance's WebAssembly memory with its own
// anonymous mapping of the instance's maximum size, outside the Go heap:
// growing it copies nothing (only the pages touched become resident), and
// discarding the instance unmaps it, so the memory goes back to the OS at
// once instead of waiting for the garbage collector.
var mmapAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return &sliceMemory{max: max} // no address space left: the Go heap
	}
	return &mmapMemory{buf: b}
})

// sliceMemory is a memory on the Go heap, grown by copying.
type sliceMemory struct {
	max uint64
	buf []byte
}

// Reallocate implements experimental.LinearMemory.
func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		b := make([]byte, size, min(max(2*size, 16<<20), m.max))
		copy(b, m.buf)
		m.buf = b
	}
	m.buf = m.buf[:size]
	return m.buf
}

// Free implements experimental.LinearMemory.
func (m *sliceMemory) Free() { m.buf = nil }

type mmapMemory struct {
	once sync.Once
	buf  []byte
}

// Reallocate implements experimental.LinearMemory: the mapping never moves.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

// Free implements experimental.LinearMemory.
func (m *mmapMemory) Free() {
	m.once.Do(func() { _ = syscall.Munmap(m.buf) })
}
