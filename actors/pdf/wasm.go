package pdf

import (
	"context"
	"reflect"

	"github.com/klippa-app/go-pdfium"
	"github.com/tetratelabs/wazero/api"
)

const (
	wasmPage = 64 << 10
	// pdfiumStackSize is the stack of go-pdfium's PDFium build (Emscripten's
	// default, 64 KiB: its __stack_pointer starts 64 KiB above the end of
	// its static data); TestDeepPageTreeIsRefusedAndBreaksNothing fails if that changes.
	pdfiumStackSize = 64 << 10
	// guardSize is the bottom of the stack painted before each document:
	// a document that reached into it came within guardSize of overflowing,
	// or overflowed.
	guardSize = 8 << 10
)

var guardPattern = func() (b [guardSize]byte) {
	for i := range b {
		b[i] = 0xa5
	}
	return b
}()

// wasmView reaches into a PDFium instance's WebAssembly module: its memory
// and its stack pointer. go-pdfium does not export them, so they are found
// by reflection; if its layout changes, the view is empty and the engine
// goes without a stack guard (TestDeepPageTreeIsRefusedAndBreaksNothing fails).
type wasmView struct {
	mem   api.Memory
	stack interface {
		Call(context.Context, ...uint64) ([]uint64, error)
	}
}

func viewOf(inst pdfium.Pdfium) (v wasmView) {
	defer func() {
		if recover() != nil {
			v = wasmView{}
		}
	}()
	impl := reflect.ValueOf(inst.GetImplementation())
	if impl.Kind() != reflect.Pointer || impl.Elem().Kind() != reflect.Struct {
		return wasmView{}
	}
	mod := impl.Elem().FieldByName("Module")
	if !mod.IsValid() || mod.IsNil() {
		return wasmView{}
	}
	mod = reflect.ValueOf(mod.Interface())
	mem, _ := mod.MethodByName("Memory").Call(nil)[0].Interface().(api.Memory)
	fn := mod.MethodByName("ExportedFunction").Call([]reflect.Value{reflect.ValueOf("emscripten_stack_get_current")})[0]
	if mem == nil || fn.IsNil() {
		return wasmView{}
	}
	v.mem = mem
	v.stack, _ = fn.Interface().(interface {
		Call(context.Context, ...uint64) ([]uint64, error)
	})
	if v.stack == nil {
		return wasmView{}
	}
	return v
}

func (v wasmView) valid() bool { return v.mem != nil && v.stack != nil }

// stackPointer is the instance's current stack pointer.
func (v wasmView) stackPointer() (uint32, bool) {
	res, err := v.stack.Call(context.Background())
	if err != nil || len(res) != 1 {
		return 0, false
	}
	return uint32(res[0]), true
}

// guardIntact says whether the painted guard at addr is untouched.
func (v wasmView) guardIntact(addr uint32) bool {
	b, ok := v.mem.Read(addr, guardSize)
	if !ok {
		return false
	}
	for _, c := range b {
		if c != 0xa5 {
			return false
		}
	}
	return true
}
