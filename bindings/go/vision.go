package llavanext

/*
#include <stdint.h>
#include <llavanext/llavanext.h>

extern int32_t llavanextGoProgress(int32_t, int64_t, int64_t, void *);
extern void llavanextGoLog(int32_t, char *, void *);

static void lnx_encoder_callbacks(llavanext_vision_encoder_params *p, uintptr_t progress, uintptr_t log) {
    if (progress) { p->progress = llavanextGoProgress; p->progress_user_data = (void *)progress; }
    if (log) { p->log = (llavanext_log_callback)llavanextGoLog; p->log_user_data = (void *)log; }
}
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// VisionEncoderOptions are the options of NewVisionEncoder; the zero value means the defaults.
type VisionEncoderOptions struct {
	Threads        int32 // 0 = one per CPU
	MaxBatchFrames int32 // 0 = 8
	// MaxRequestBytes caps the memory one call may allocate; 0 = the default (8 GiB).
	MaxRequestBytes int64
	Progress        ProgressFunc
	Log             LogFunc
}

// VisionEncoder runs the vision tower (llavanext_vision_encoder).
type VisionEncoder struct {
	mu        sync.Mutex // guards ptr against Cancel racing Close
	ptr       *C.llavanext_vision_encoder
	cb        *callbacks
	model     *modelShared
	closeOnce sync.Once
}

// NewVisionEncoder creates an encoder for model. opts may be nil.
func NewVisionEncoder(model *Model, opts *VisionEncoderOptions) (*VisionEncoder, error) {
	defer runtime.KeepAlive(model)
	mh, err := model.handle()
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &VisionEncoderOptions{}
	}
	cb := newCallbacks(opts.Progress, opts.Log)
	var p C.llavanext_vision_encoder_params
	C.llavanext_vision_encoder_params_init(&p, C.size_t(unsafe.Sizeof(p)))
	p.threads = C.int32_t(opts.Threads)
	p.max_batch_frames = C.int32_t(opts.MaxBatchFrames)
	p.max_request_bytes = C.int64_t(opts.MaxRequestBytes)
	C.lnx_encoder_callbacks(&p, cb.progressHandle(), cb.logHandle())
	var out *C.llavanext_vision_encoder
	if _, err := call(func() C.llavanext_status { return C.llavanext_vision_encoder_create(&out, mh, &p) }); err != nil {
		cb.release()
		return nil, err
	}
	model.shared.retain()
	e := &VisionEncoder{ptr: out, cb: cb, model: model.shared}
	runtime.SetFinalizer(e, (*VisionEncoder).Close)
	return e, nil
}

// Close frees the encoder. Idempotent.
func (e *VisionEncoder) Close() error {
	e.closeOnce.Do(func() {
		runtime.SetFinalizer(e, nil)
		e.mu.Lock()
		C.llavanext_vision_encoder_free(e.ptr)
		e.ptr = nil
		e.mu.Unlock()
		e.cb.release()
		e.model.release()
	})
	return nil
}

// Cancel asks a running encode (on another goroutine) to stop; it fails with ErrAborted.
func (e *VisionEncoder) Cancel() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ptr != nil {
		C.llavanext_vision_encoder_cancel(e.ptr)
	}
}

func (e *VisionEncoder) tensor(f func(out **C.llavanext_tensor) C.llavanext_status) (*Tensor, error) {
	defer runtime.KeepAlive(e)
	if e.ptr == nil {
		return nil, ErrClosed
	}
	var out *C.llavanext_tensor
	_, err := callOn(encoderErrors(e.ptr), func() C.llavanext_status { return f(&out) })
	e.cb.rethrow()
	if err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

func framesPtr(f *Frames) *C.llavanext_frames {
	if f == nil {
		return nil
	}
	return f.ptr
}

func tensorPtr(t *Tensor) *C.llavanext_tensor {
	if t == nil {
		return nil
	}
	return t.ptr
}

// EncodeVideo turns frames into VIDEO_FEATURES.
func (e *VisionEncoder) EncodeVideo(frames *Frames) (*Tensor, error) {
	defer runtime.KeepAlive(frames)
	return e.tensor(func(out **C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_vision_encoder_encode_video(out, e.ptr, framesPtr(frames))
	})
}

// EncodeImage turns frame index of frames into IMAGE_FEATURES (AnyRes).
func (e *VisionEncoder) EncodeImage(frames *Frames, index int) (*Tensor, error) {
	defer runtime.KeepAlive(frames)
	return e.tensor(func(out **C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_vision_encoder_encode_image(out, e.ptr, framesPtr(frames), C.int32_t(index))
	})
}

// PreprocessVideo turns frames into VIDEO_PIXELS.
func (e *VisionEncoder) PreprocessVideo(frames *Frames) (*Tensor, error) {
	defer runtime.KeepAlive(frames)
	return e.tensor(func(out **C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_vision_encoder_preprocess_video(out, e.ptr, framesPtr(frames))
	})
}

// PreprocessImage turns frame index into IMAGE_PIXELS.
func (e *VisionEncoder) PreprocessImage(frames *Frames, index int) (*Tensor, error) {
	defer runtime.KeepAlive(frames)
	return e.tensor(func(out **C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_vision_encoder_preprocess_image(out, e.ptr, framesPtr(frames), C.int32_t(index))
	})
}

// EncodePixels runs the vision tower on VIDEO_PIXELS or IMAGE_PIXELS.
func (e *VisionEncoder) EncodePixels(pixels *Tensor) (*Tensor, error) {
	defer runtime.KeepAlive(pixels)
	return e.tensor(func(out **C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_vision_encoder_encode_pixels(out, e.ptr, tensorPtr(pixels))
	})
}

// PoolMode is a pooling mode (llavanext_pool_mode).
type PoolMode int32

// Pooling modes.
const (
	PoolDefault PoolMode = C.LLAVANEXT_POOL_DEFAULT
	PoolAverage PoolMode = C.LLAVANEXT_POOL_AVERAGE
	PoolMax     PoolMode = C.LLAVANEXT_POOL_MAX
)

// PoolerOptions are the options of NewPooler; nil means the defaults.
type PoolerOptions struct {
	Threads    int32    // 0 = one per CPU
	PoolStride int32    // 0 = config's, 1 = no pooling
	PoolMode   PoolMode // PoolDefault = config's
}

// Pooler does spatial pooling and the projector (llavanext_pooler).
type Pooler struct {
	ptr       *C.llavanext_pooler
	model     *modelShared
	closeOnce sync.Once
}

// NewPooler creates a pooler for model. opts may be nil.
func NewPooler(model *Model, opts *PoolerOptions) (*Pooler, error) {
	defer runtime.KeepAlive(model)
	mh, err := model.handle()
	if err != nil {
		return nil, err
	}
	var p C.llavanext_pooler_params
	C.llavanext_pooler_params_init(&p, C.size_t(unsafe.Sizeof(p)))
	if opts != nil {
		p.threads = C.int32_t(opts.Threads)
		p.pool_stride = C.int32_t(opts.PoolStride)
		p.pool_mode = C.int32_t(opts.PoolMode)
	}
	var out *C.llavanext_pooler
	if _, err := call(func() C.llavanext_status { return C.llavanext_pooler_create(&out, mh, &p) }); err != nil {
		return nil, err
	}
	model.shared.retain()
	pl := &Pooler{ptr: out, model: model.shared}
	runtime.SetFinalizer(pl, (*Pooler).Close)
	return pl, nil
}

// Close frees the pooler. Idempotent.
func (p *Pooler) Close() error {
	p.closeOnce.Do(func() {
		runtime.SetFinalizer(p, nil)
		C.llavanext_pooler_free(p.ptr)
		p.ptr = nil
		p.model.release()
	})
	return nil
}

// TokensPerFrame is the number of embeddings per video frame with this pooler's stride.
func (p *Pooler) TokensPerFrame() int {
	defer runtime.KeepAlive(p)
	return int(C.llavanext_pooler_tokens_per_frame(p.ptr))
}

type poolerFunc func(**C.llavanext_tensor, *C.llavanext_pooler, *C.llavanext_tensor) C.llavanext_status

func (p *Pooler) run(f poolerFunc, in *Tensor) (*Tensor, error) {
	defer runtime.KeepAlive(p)
	defer runtime.KeepAlive(in)
	if p.ptr == nil {
		return nil, ErrClosed
	}
	var out *C.llavanext_tensor
	if _, err := callOn(poolerErrors(p.ptr), func() C.llavanext_status { return f(&out, p.ptr, tensorPtr(in)) }); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// Apply turns VIDEO_FEATURES into VIDEO_EMBEDDINGS, IMAGE_FEATURES into IMAGE_EMBEDDINGS.
func (p *Pooler) Apply(features *Tensor) (*Tensor, error) {
	return p.run(func(o **C.llavanext_tensor, pl *C.llavanext_pooler, t *C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_pooler_apply(o, pl, t)
	}, features)
}

// Pool turns VIDEO_FEATURES into VIDEO_POOLED.
func (p *Pooler) Pool(features *Tensor) (*Tensor, error) {
	return p.run(func(o **C.llavanext_tensor, pl *C.llavanext_pooler, t *C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_pooler_pool(o, pl, t)
	}, features)
}

// Project turns VIDEO_POOLED into VIDEO_EMBEDDINGS, IMAGE_FEATURES into IMAGE_PROJECTED.
func (p *Pooler) Project(features *Tensor) (*Tensor, error) {
	return p.run(func(o **C.llavanext_tensor, pl *C.llavanext_pooler, t *C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_pooler_project(o, pl, t)
	}, features)
}

// PackImage turns IMAGE_PROJECTED into IMAGE_EMBEDDINGS.
func (p *Pooler) PackImage(projected *Tensor) (*Tensor, error) {
	return p.run(func(o **C.llavanext_tensor, pl *C.llavanext_pooler, t *C.llavanext_tensor) C.llavanext_status {
		return C.llavanext_pooler_pack_image(o, pl, t)
	}, projected)
}
