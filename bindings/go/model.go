package llavanext

/*
#include <stdint.h>
#include <stdlib.h>
#include <llavanext/llavanext.h>

extern int32_t llavanextGoProgress(int32_t, int64_t, int64_t, void *);
extern void llavanextGoLog(int32_t, char *, void *);

static void lnx_model_callbacks(llavanext_model_params *p, uintptr_t progress, uintptr_t log) {
    if (progress) { p->progress = llavanextGoProgress; p->progress_user_data = (void *)progress; }
    if (log) { p->log = (llavanext_log_callback)llavanextGoLog; p->log_user_data = (void *)log; }
}

static void lnx_set_default_log(uintptr_t log) {
    if (log) llavanext_set_default_log((llavanext_log_callback)llavanextGoLog, (void *)log);
    else llavanext_set_default_log(NULL, NULL);
}
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// LoadMode says how LoadModel makes the weights available (llavanext_load_mode).
type LoadMode int32

// Load modes.
const (
	LoadMmap      LoadMode = C.LLAVANEXT_LOAD_MMAP
	LoadRead      LoadMode = C.LLAVANEXT_LOAD_READ
	LoadNoWeights LoadMode = C.LLAVANEXT_LOAD_NO_WEIGHTS // config, tokenizer and template only
)

// SpecialToken names a special token (llavanext_special_token).
type SpecialToken int32

// Special tokens.
const (
	TokenBOS   SpecialToken = C.LLAVANEXT_TOKEN_BOS
	TokenEOS   SpecialToken = C.LLAVANEXT_TOKEN_EOS
	TokenPAD   SpecialToken = C.LLAVANEXT_TOKEN_PAD
	TokenUNK   SpecialToken = C.LLAVANEXT_TOKEN_UNK
	TokenVideo SpecialToken = C.LLAVANEXT_TOKEN_VIDEO
	TokenImage SpecialToken = C.LLAVANEXT_TOKEN_IMAGE
)

// Precision is the compute precision of the large matrix products (llavanext_precision).
type Precision int32

// Precisions.
const (
	PrecisionAuto Precision = C.LLAVANEXT_PRECISION_AUTO // BF16 where supported, else F32
	PrecisionF32  Precision = C.LLAVANEXT_PRECISION_F32  // the reference-exact path (default)
	PrecisionBF16 Precision = C.LLAVANEXT_PRECISION_BF16 // bf16 products, f32 accumulation
)

// ModelOptions are the options of LoadModel; the zero value means the defaults.
type ModelOptions struct {
	LoadMode    LoadMode
	CheckFinite bool         // scan every weight for NaN/Inf
	Precision   *Precision   // nil: the library's default (PrecisionF32)
	Progress    ProgressFunc // StageLoad
	Log         LogFunc
}

// Model is a loaded checkpoint (llavanext_model): immutable, safe for many goroutines at once.
// Encoders, poolers and generators keep it alive, so it may be closed before them.
type Model struct {
	ptr       *C.llavanext_model
	closeOnce sync.Once
	shared    *modelShared
}

// modelShared keeps the model's callbacks alive as long as the Go model or anything made from
// it may still cause the C model to call them.
type modelShared struct {
	refs int32
	cb   *callbacks
}

func (s *modelShared) retain() { atomic.AddInt32(&s.refs, 1) }

func (s *modelShared) release() {
	if atomic.AddInt32(&s.refs, -1) == 0 {
		s.cb.release()
	}
}

// LoadModel loads a Hugging Face LLaVA-NeXT-Video checkpoint directory. opts may be nil.
func LoadModel(dir string, opts *ModelOptions) (*Model, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &ModelOptions{}
	}
	cb := newCallbacks(opts.Progress, opts.Log)
	var p C.llavanext_model_params
	C.llavanext_model_params_init(&p, C.size_t(unsafe.Sizeof(p)))
	p.load_mode = C.int32_t(opts.LoadMode)
	p.check_finite = boolInt(opts.CheckFinite)
	if opts.Precision != nil {
		p.precision = C.int32_t(*opts.Precision)
	}
	C.lnx_model_callbacks(&p, cb.progressHandle(), cb.logHandle())
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var out *C.llavanext_model
	_, err := call(func() C.llavanext_status { return C.llavanext_model_load(&out, cdir, &p) })
	if err != nil {
		cb.rethrow()
		cb.release()
		return nil, err
	}
	m := &Model{ptr: out, shared: &modelShared{refs: 1, cb: cb}}
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// Close releases the Go model's reference to the C model. Idempotent.
func (m *Model) Close() error {
	m.closeOnce.Do(func() {
		runtime.SetFinalizer(m, nil)
		C.llavanext_model_free(m.ptr)
		m.ptr = nil
		m.shared.release()
	})
	return nil
}

func (m *Model) handle() (*C.llavanext_model, error) {
	if m == nil || m.ptr == nil {
		return nil, ErrClosed
	}
	return m.ptr, nil
}

// TokenID is the id of a special token, or -1 when the model has none.
func (m *Model) TokenID(which SpecialToken) int32 {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return -1
	}
	return int32(C.llavanext_model_token_id(h, C.int32_t(which)))
}

// VocabSize is the size of the vocabulary.
func (m *Model) VocabSize() int32 {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return 0
	}
	return int32(C.llavanext_model_vocab_size(h))
}

// ContextLength is the context length in tokens with RoPE factor ropeScale (0 = config's).
func (m *Model) ContextLength(ropeScale float64) int64 {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return 0
	}
	return int64(C.llavanext_model_context_length(h, C.double(ropeScale)))
}

// TokensPerFrame is the number of embeddings per video frame with the pooling stride (0 =
// config's).
func (m *Model) TokensPerFrame(poolStride int32) int32 {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return 0
	}
	return int32(C.llavanext_model_tokens_per_frame(h, C.int32_t(poolStride)))
}

// ImageTokens is the number of embeddings an image of the given size turns into (-1: invalid).
func (m *Model) ImageTokens(height, width int32) int64 {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return -1
	}
	return int64(C.llavanext_model_image_tokens(h, C.int32_t(height), C.int32_t(width)))
}

// Describe returns a JSON description of the model.
func (m *Model) Describe() (string, error) {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return "", err
	}
	var out *C.char
	if _, err := callOn(modelErrors(h), func() C.llavanext_status { return C.llavanext_model_describe(&out, h) }); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// Tokenize returns the token ids of text.
func (m *Model) Tokenize(text string, addBOS bool) ([]int32, error) {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return nil, err
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	var ids *C.int32_t
	var n C.size_t
	_, err = callOn(modelErrors(h), func() C.llavanext_status {
		return C.llavanext_model_tokenize(&ids, &n, h, ctext, C.size_t(len(text)), boolInt(addBOS))
	})
	if err != nil {
		return nil, err
	}
	defer C.llavanext_free(unsafe.Pointer(ids))
	out := make([]int32, int(n))
	if n > 0 {
		copy(out, unsafe.Slice((*int32)(unsafe.Pointer(ids)), int(n)))
	}
	return out, nil
}

// Detokenize returns the text of token ids.
func (m *Model) Detokenize(ids []int32, skipSpecial bool) (string, error) {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return "", err
	}
	var p *C.int32_t
	if len(ids) > 0 {
		p = (*C.int32_t)(unsafe.Pointer(&ids[0]))
	}
	var out *C.char
	_, err = callOn(modelErrors(h), func() C.llavanext_status {
		return C.llavanext_model_detokenize(&out, h, p, C.size_t(len(ids)), boolInt(skipSpecial))
	})
	if err != nil {
		return "", err
	}
	return takeString(out), nil
}

// RenderChat renders a conversation (Hugging Face messages as a JSON array) with the
// checkpoint's chat template.
func (m *Model) RenderChat(messagesJSON string, addGenerationPrompt bool) (string, error) {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return "", err
	}
	cm := C.CString(messagesJSON)
	defer C.free(unsafe.Pointer(cm))
	var out *C.char
	_, err = callOn(modelErrors(h), func() C.llavanext_status {
		return C.llavanext_model_render_chat(&out, h, cm, boolInt(addGenerationPrompt))
	})
	if err != nil {
		return "", err
	}
	return takeString(out), nil
}

// Budget is the outcome of Model.PlanBudget.
type Budget struct {
	TokensPerFrame      int32
	VisualTokens        int64
	TotalTokens         int64
	RopeScale           float64
	ContextLength       int64
	Fits                bool
	SuggestedFrames     int32
	SuggestedPoolStride int32
}

// BudgetRequest is what Model.PlanBudget plans.
type BudgetRequest struct {
	Frames       int32
	PoolStride   int32 // 0 = config's
	ImageTokens  int64
	TextTokens   int64
	MaxNewTokens int32
	RopeScale    float64 // 0 = config's, < 0 = "auto"
	ContextLimit int64   // > 0 caps the context
}

// PlanBudget checks a request against the context before anything is decoded or encoded.
func (m *Model) PlanBudget(r BudgetRequest) (Budget, error) {
	defer runtime.KeepAlive(m)
	h, err := m.handle()
	if err != nil {
		return Budget{}, err
	}
	var b C.llavanext_budget
	b.struct_size = C.uint32_t(unsafe.Sizeof(b))
	_, err = callOn(modelErrors(h), func() C.llavanext_status {
		return C.llavanext_model_plan_budget(&b, h, C.int32_t(r.Frames), C.int32_t(r.PoolStride),
			C.int64_t(r.ImageTokens), C.int64_t(r.TextTokens), C.int32_t(r.MaxNewTokens),
			C.double(r.RopeScale), C.int64_t(r.ContextLimit))
	})
	if err != nil {
		return Budget{}, err
	}
	return Budget{int32(b.tokens_per_frame), int64(b.visual_tokens), int64(b.total_tokens),
		float64(b.rope_scale), int64(b.context_length), b.fits != 0, int32(b.suggested_frames),
		int32(b.suggested_pool_stride)}, nil
}

var defaultLog struct {
	sync.Mutex
	cb *callbacks
}

// SetDefaultLog sets the process-wide default log callback (nil silences the library). The
// previous callback is kept alive, as another thread may still be running it.
func SetDefaultLog(fn LogFunc) {
	defaultLog.Lock()
	defer defaultLog.Unlock()
	cb := newCallbacks(nil, fn)
	C.lnx_set_default_log(cb.logHandle())
	defaultLog.cb = cb
}
