// Package llavanext is the Go binding (cgo) of libllavanext: run LLaVA-NeXT-Video models on a
// CPU.
//
// The pipeline: LoadModel → OpenFrameSampler + Uniform → VisionEncoder.EncodeVideo →
// Pooler.Apply → Model.RenderChat → Generator.AppendPrompt → Generator.Next (or Generate).
//
// The library is found with pkg-config (`#cgo pkg-config: llavanext`); for a meson build
// directory BUILD set PKG_CONFIG_PATH=BUILD/meson-uninstalled, and LD_LIBRARY_PATH to the
// directory of libllavanext.so when running. Built with the tag llavanext_nopkgconfig, the
// package links plain -lllavanext and takes its paths from CGO_CFLAGS and CGO_LDFLAGS.
//
// Every handle has a Close method (idempotent, safe to call from any goroutine) and a finalizer
// that closes it if the program forgets. A Model may be used by many goroutines at once; every
// other handle by one goroutine at a time (it may move between goroutines). A panic in a
// callback never unwinds into C: it is recovered, the operation is aborted, and the panic is
// raised again once the C call has returned.
package llavanext

/*
#include <stdlib.h>
#include <llavanext/llavanext.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// BindingVersionNumber is the library version this package was written for
// (LLAVANEXT_VERSION_NUMBER's encoding: major*10000 + minor*100 + patch).
const BindingVersionNumber = 100

// HeaderVersionNumber is the version of the header the package was compiled against.
const HeaderVersionNumber = int(C.LLAVANEXT_VERSION_NUMBER)

// Version is the linked library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.llavanext_version()) }

// VersionNumber is the linked library's version as one integer.
func VersionNumber() int { return int(C.llavanext_version_number()) }

// CheckVersion reports an error when the linked library does not have the major version this
// package was written for, or is older. LoadModel calls it.
func CheckVersion() error {
	n := VersionNumber()
	if n/10000 != BindingVersionNumber/10000 || n < BindingVersionNumber {
		return &Error{Status: StatusUnsupported,
			Message: fmt.Sprintf("libllavanext %s is not compatible with this package (written for 0.1.0)", Version())}
	}
	return nil
}

// Status is an llavanext_status value.
type Status int32

// Status values.
const (
	StatusOK              Status = C.LLAVANEXT_OK
	StatusDone            Status = C.LLAVANEXT_DONE
	StatusInvalidArgument Status = C.LLAVANEXT_E_INVALID_ARGUMENT
	StatusNoMemory        Status = C.LLAVANEXT_E_NO_MEMORY
	StatusIO              Status = C.LLAVANEXT_E_IO
	StatusFormat          Status = C.LLAVANEXT_E_FORMAT
	StatusUnsupported     Status = C.LLAVANEXT_E_UNSUPPORTED
	StatusMedia           Status = C.LLAVANEXT_E_MEDIA
	StatusContextFull     Status = C.LLAVANEXT_E_CONTEXT_FULL
	StatusAborted         Status = C.LLAVANEXT_E_ABORTED
	StatusInternal        Status = C.LLAVANEXT_E_INTERNAL
	StatusState           Status = C.LLAVANEXT_E_STATE
	StatusLimit           Status = C.LLAVANEXT_E_LIMIT
	StatusTemplate        Status = C.LLAVANEXT_E_TEMPLATE
)

// String is the library's short description of the status.
func (s Status) String() string { return C.GoString(C.llavanext_status_string(C.llavanext_status(s))) }

// Error is a failed call: the status and the library's detail message (what failed and where).
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("llavanext: %s (%d)", e.Status, int32(e.Status))
	}
	return fmt.Sprintf("llavanext: %s (%d): %s", e.Status, int32(e.Status), e.Message)
}

// Is makes errors.Is(err, llavanext.ErrIO) and the like compare statuses.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && (t.Message == "" || t.Message == e.Message)
}

// Sentinel errors for errors.Is.
var (
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrNoMemory        = &Error{Status: StatusNoMemory}
	ErrIO              = &Error{Status: StatusIO}
	ErrFormat          = &Error{Status: StatusFormat}
	ErrUnsupported     = &Error{Status: StatusUnsupported}
	ErrMedia           = &Error{Status: StatusMedia}
	ErrContextFull     = &Error{Status: StatusContextFull}
	ErrAborted         = &Error{Status: StatusAborted}
	ErrInternal        = &Error{Status: StatusInternal}
	ErrState           = &Error{Status: StatusState}
	ErrLimit           = &Error{Status: StatusLimit}
	ErrTemplate        = &Error{Status: StatusTemplate}
	// ErrClosed is returned by methods of a handle after Close.
	ErrClosed = &Error{Status: StatusInvalidArgument, Message: "handle is closed"}
)

// call runs one C call and reads the thread-local last error on the same OS thread.
func call(f func() C.llavanext_status) (Status, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := Status(f())
	if st < 0 {
		return st, &Error{Status: st, Message: C.GoString(C.llavanext_last_error())}
	}
	return st, nil
}

// errorReader copies a handle's last error message (llavanext_<object>_last_error).
type errorReader func(buf *C.char, size C.size_t) C.size_t

// callOn runs one C call on a handle and takes the message of a failure from the handle itself,
// so the goroutine may move between OS threads around the call.
func callOn(read errorReader, f func() C.llavanext_status) (Status, error) {
	st := Status(f())
	if st < 0 {
		return st, &Error{Status: st, Message: readError(read)}
	}
	return st, nil
}

func readError(read errorReader) string {
	n := read(nil, 0)
	buf := (*C.char)(C.malloc(n + 1))
	defer C.free(unsafe.Pointer(buf))
	read(buf, n+1)
	return C.GoString(buf)
}

func modelErrors(h *C.llavanext_model) errorReader {
	return func(b *C.char, n C.size_t) C.size_t { return C.llavanext_model_last_error(h, b, n) }
}

func samplerErrors(h *C.llavanext_frame_sampler) errorReader {
	return func(b *C.char, n C.size_t) C.size_t { return C.llavanext_frame_sampler_last_error(h, b, n) }
}

func encoderErrors(h *C.llavanext_vision_encoder) errorReader {
	return func(b *C.char, n C.size_t) C.size_t { return C.llavanext_vision_encoder_last_error(h, b, n) }
}

func poolerErrors(h *C.llavanext_pooler) errorReader {
	return func(b *C.char, n C.size_t) C.size_t { return C.llavanext_pooler_last_error(h, b, n) }
}

func generatorErrors(h *C.llavanext_generator) errorReader {
	return func(b *C.char, n C.size_t) C.size_t { return C.llavanext_generator_last_error(h, b, n) }
}

// takeString copies a string the library gave away and frees it.
func takeString(p *C.char) string {
	s := C.GoString(p)
	C.llavanext_free(unsafe.Pointer(p))
	return s
}

func boolInt(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

// Stage is a progress stage (llavanext_stage).
type Stage int32

// Stages reported to progress callbacks.
const (
	StageLoad     Stage = C.LLAVANEXT_STAGE_LOAD
	StageSample   Stage = C.LLAVANEXT_STAGE_SAMPLE
	StageEncode   Stage = C.LLAVANEXT_STAGE_ENCODE
	StagePrefill  Stage = C.LLAVANEXT_STAGE_PREFILL
	StageGenerate Stage = C.LLAVANEXT_STAGE_GENERATE
)

func (s Stage) String() string {
	switch s {
	case StageLoad:
		return "load"
	case StageSample:
		return "sample"
	case StageEncode:
		return "encode"
	case StagePrefill:
		return "prefill"
	case StageGenerate:
		return "generate"
	}
	return fmt.Sprintf("stage(%d)", int32(s))
}

// LogLevel is a log level (llavanext_log_level).
type LogLevel int32

// Log levels.
const (
	LogError   LogLevel = C.LLAVANEXT_LOG_ERROR
	LogWarning LogLevel = C.LLAVANEXT_LOG_WARNING
	LogInfo    LogLevel = C.LLAVANEXT_LOG_INFO
	LogDebug   LogLevel = C.LLAVANEXT_LOG_DEBUG
)

// ProgressFunc receives progress (done of total units of a stage). Return false to abort the
// operation, which then fails with ErrAborted.
type ProgressFunc func(stage Stage, done, total int64) bool

// LogFunc receives one log message. For a model it may be called from several threads at once.
type LogFunc func(level LogLevel, message string)

// LastError is the message of the most recent failed call on the model ("" if none), whichever
// goroutine or OS thread made it.
func (m *Model) LastError() string {
	defer runtime.KeepAlive(m)
	if m == nil || m.ptr == nil {
		return ""
	}
	return readError(modelErrors(m.ptr))
}

// LastError is the message of the most recent failed call on the frame sampler ("" if none).
func (s *FrameSampler) LastError() string {
	defer runtime.KeepAlive(s)
	if s == nil || s.ptr == nil {
		return ""
	}
	return readError(samplerErrors(s.ptr))
}

// LastError is the message of the most recent failed call on the encoder ("" if none).
func (e *VisionEncoder) LastError() string {
	defer runtime.KeepAlive(e)
	if e == nil || e.ptr == nil {
		return ""
	}
	return readError(encoderErrors(e.ptr))
}

// LastError is the message of the most recent failed call on the pooler ("" if none).
func (p *Pooler) LastError() string {
	defer runtime.KeepAlive(p)
	if p == nil || p.ptr == nil {
		return ""
	}
	return readError(poolerErrors(p.ptr))
}

// LastError is the message of the most recent failed call on the generator ("" if none).
func (g *Generator) LastError() string {
	defer runtime.KeepAlive(g)
	if g == nil || g.ptr == nil {
		return ""
	}
	return readError(generatorErrors(g.ptr))
}
