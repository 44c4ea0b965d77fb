package llavanext

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"sync"
	"unsafe"
)

// callbacks is the Go side of one handle's progress and log callbacks; C gets a cgo.Handle to
// it as user_data.
type callbacks struct {
	progress ProgressFunc
	log      LogFunc

	mu       sync.Mutex
	panicked bool
	panicVal any
	handle   cgo.Handle
}

func newCallbacks(progress ProgressFunc, log LogFunc) *callbacks {
	if progress == nil && log == nil {
		return nil
	}
	cb := &callbacks{progress: progress, log: log}
	cb.handle = cgo.NewHandle(cb)
	return cb
}

// progressHandle and logHandle are the user_data values for C (0: no callback).
func (cb *callbacks) progressHandle() C.uintptr_t {
	if cb == nil || cb.progress == nil {
		return 0
	}
	return C.uintptr_t(cb.handle)
}

func (cb *callbacks) logHandle() C.uintptr_t {
	if cb == nil || cb.log == nil {
		return 0
	}
	return C.uintptr_t(cb.handle)
}

// release deletes the handle; call it only once the C object that uses it is gone.
func (cb *callbacks) release() {
	if cb != nil {
		cb.handle.Delete()
	}
}

// rethrow raises again a panic recovered in a callback during the last C call.
func (cb *callbacks) rethrow() {
	if cb == nil {
		return
	}
	cb.mu.Lock()
	p, v := cb.panicked, cb.panicVal
	cb.panicked, cb.panicVal = false, nil
	cb.mu.Unlock()
	if p {
		panic(v)
	}
}

func (cb *callbacks) runProgress(stage Stage, done, total int64) (goOn bool) {
	cb.mu.Lock()
	already := cb.panicked
	cb.mu.Unlock()
	if already {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			cb.mu.Lock()
			cb.panicked, cb.panicVal = true, r
			cb.mu.Unlock()
			goOn = false
		}
	}()
	return cb.progress(stage, done, total)
}

//export llavanextGoProgress
func llavanextGoProgress(stage C.int32_t, done C.int64_t, total C.int64_t, userData unsafe.Pointer) C.int32_t {
	cb, ok := cgo.Handle(uintptr(userData)).Value().(*callbacks)
	if !ok || cb.progress == nil {
		return 0
	}
	if cb.runProgress(Stage(stage), int64(done), int64(total)) {
		return 0
	}
	return 1
}

//export llavanextGoLog
func llavanextGoLog(level C.int32_t, message *C.char, userData unsafe.Pointer) {
	cb, ok := cgo.Handle(uintptr(userData)).Value().(*callbacks)
	if !ok || cb.log == nil {
		return
	}
	defer func() { _ = recover() }() // logging cannot abort anything: a panic is dropped
	cb.log(LogLevel(level), C.GoString(message))
}

// tokenState is the Go side of one Generate call.
type tokenState struct {
	fn       func(piece string, token int32) bool
	panicked bool
	panicVal any
}

//export llavanextGoToken
func llavanextGoToken(piece *C.char, length C.size_t, token C.int32_t, userData unsafe.Pointer) (ret C.int32_t) {
	st, ok := cgo.Handle(uintptr(userData)).Value().(*tokenState)
	if !ok || st.panicked {
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			st.panicked, st.panicVal = true, r
			ret = 1
		}
	}()
	if st.fn(C.GoStringN(piece, C.int(length)), int32(token)) {
		return 0
	}
	return 1
}
