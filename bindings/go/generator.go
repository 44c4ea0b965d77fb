package llavanext

/*
#include <stdint.h>
#include <stdlib.h>
#include <llavanext/llavanext.h>

extern int32_t llavanextGoProgress(int32_t, int64_t, int64_t, void *);
extern void llavanextGoLog(int32_t, char *, void *);
extern int32_t llavanextGoToken(char *, size_t, int32_t, void *);

static void lnx_generator_callbacks(llavanext_generator_params *p, uintptr_t progress, uintptr_t log) {
    if (progress) { p->progress = llavanextGoProgress; p->progress_user_data = (void *)progress; }
    if (log) { p->log = (llavanext_log_callback)llavanextGoLog; p->log_user_data = (void *)log; }
}

static llavanext_status lnx_generate(llavanext_generator *g, uintptr_t state) {
    return llavanext_generator_generate(g, (llavanext_token_callback)llavanextGoToken, (void *)state);
}
*/
import "C"

import (
	"io"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// GeneratorOptions are the options of NewGenerator; nil fields keep the library's defaults
// (see llavanext.h: e.g. temperature -1 = generation_config.json's, 0 = greedy).
type GeneratorOptions struct {
	Threads           *int32
	ContextLength     *int64
	RopeScale         *float64
	MaxNewTokens      *int32
	Temperature       *float32
	TopK              *int32
	TopP              *float32
	MinP              *float32
	RepetitionPenalty *float32
	Seed              *uint64
	PrefillChunk      *int32
	MaxRequestBytes   *int64       // cap on the generator's memory, checked at creation; 0 = no cap
	KVCache           *KVCache     // nil: KVCacheAuto
	Progress          ProgressFunc // StagePrefill and StageGenerate
	Log               LogFunc
}

// KVCache is how the KV cache stores keys and values (llavanext_kv_cache).
type KVCache int32

// KV cache types.
const (
	KVCacheAuto KVCache = C.LLAVANEXT_KV_CACHE_AUTO // f32 on the exact path, q8 with q4 weights, else f16
	KVCacheF32  KVCache = C.LLAVANEXT_KV_CACHE_F32
	KVCacheF16  KVCache = C.LLAVANEXT_KV_CACHE_F16
	KVCacheQ8   KVCache = C.LLAVANEXT_KV_CACHE_Q8 // blocks of 32 int8 values with a half scale
)

// Greedy returns options for greedy decoding of at most maxNewTokens tokens (0: the model's
// generation config).
func Greedy(maxNewTokens int32) *GeneratorOptions {
	t := float32(0)
	o := &GeneratorOptions{Temperature: &t}
	if maxNewTokens > 0 {
		o.MaxNewTokens = &maxNewTokens
	}
	return o
}

// Token is one generated token: the text it completes (whole UTF-8 characters, possibly empty)
// and its id (-1 for the final flush of pending text).
type Token struct {
	Piece string
	ID    int32
}

// Generator is one conversation with the language model (llavanext_generator).
type Generator struct {
	mu        sync.Mutex // guards ptr against Cancel racing Close
	ptr       *C.llavanext_generator
	cb        *callbacks
	model     *modelShared
	done      bool
	closeOnce sync.Once
}

// NewGenerator creates a generator for model. opts may be nil.
func NewGenerator(model *Model, opts *GeneratorOptions) (*Generator, error) {
	defer runtime.KeepAlive(model)
	mh, err := model.handle()
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &GeneratorOptions{}
	}
	var p C.llavanext_generator_params
	C.llavanext_generator_params_init(&p, C.size_t(unsafe.Sizeof(p)))
	if opts.Threads != nil {
		p.threads = C.int32_t(*opts.Threads)
	}
	if opts.ContextLength != nil {
		p.context_length = C.int64_t(*opts.ContextLength)
	}
	if opts.RopeScale != nil {
		p.rope_scale = C.double(*opts.RopeScale)
	}
	if opts.MaxNewTokens != nil {
		p.max_new_tokens = C.int32_t(*opts.MaxNewTokens)
	}
	if opts.Temperature != nil {
		p.temperature = C.float(*opts.Temperature)
	}
	if opts.TopK != nil {
		p.top_k = C.int32_t(*opts.TopK)
	}
	if opts.TopP != nil {
		p.top_p = C.float(*opts.TopP)
	}
	if opts.MinP != nil {
		p.min_p = C.float(*opts.MinP)
	}
	if opts.RepetitionPenalty != nil {
		p.repetition_penalty = C.float(*opts.RepetitionPenalty)
	}
	if opts.Seed != nil {
		p.seed = C.uint64_t(*opts.Seed)
	}
	if opts.PrefillChunk != nil {
		p.prefill_chunk = C.int32_t(*opts.PrefillChunk)
	}
	if opts.MaxRequestBytes != nil {
		p.max_request_bytes = C.int64_t(*opts.MaxRequestBytes)
	}
	if opts.KVCache != nil {
		p.kv_cache = C.int32_t(*opts.KVCache)
	}
	cb := newCallbacks(opts.Progress, opts.Log)
	C.lnx_generator_callbacks(&p, cb.progressHandle(), cb.logHandle())
	var out *C.llavanext_generator
	if _, err := call(func() C.llavanext_status { return C.llavanext_generator_create(&out, mh, &p) }); err != nil {
		cb.release()
		return nil, err
	}
	model.shared.retain()
	g := &Generator{ptr: out, cb: cb, model: model.shared}
	runtime.SetFinalizer(g, (*Generator).Close)
	return g, nil
}

// Close frees the generator. Idempotent.
func (g *Generator) Close() error {
	g.closeOnce.Do(func() {
		runtime.SetFinalizer(g, nil)
		g.mu.Lock()
		C.llavanext_generator_free(g.ptr)
		g.ptr = nil
		g.mu.Unlock()
		g.cb.release()
		g.model.release()
	})
	return nil
}

// Cancel asks a running prefill/generation (on another goroutine) to stop: it fails with
// ErrAborted.
func (g *Generator) Cancel() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ptr != nil {
		C.llavanext_generator_cancel(g.ptr)
	}
}

// AppendPrompt appends prompt text; every <video>/<image> placeholder in it takes the next
// tensor of media (VIDEO_EMBEDDINGS / IMAGE_EMBEDDINGS, copied).
func (g *Generator) AppendPrompt(text string, media ...*Tensor) error {
	defer runtime.KeepAlive(g)
	defer runtime.KeepAlive(media)
	if g.ptr == nil {
		return ErrClosed
	}
	ptrs := make([]*C.llavanext_tensor, len(media))
	for i, t := range media {
		if t == nil || t.ptr == nil {
			return ErrClosed
		}
		ptrs[i] = t.ptr
	}
	var pp **C.llavanext_tensor
	if len(ptrs) > 0 {
		pp = &ptrs[0]
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	_, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status {
		return C.llavanext_generator_append_prompt(g.ptr, ctext, C.size_t(len(text)), pp, C.int32_t(len(ptrs)))
	})
	if err == nil {
		g.done = false
	}
	return err
}

// AppendTokens appends token ids as they are.
func (g *Generator) AppendTokens(ids []int32) error {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return ErrClosed
	}
	var p *C.int32_t
	if len(ids) > 0 {
		p = (*C.int32_t)(unsafe.Pointer(&ids[0]))
	}
	_, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status { return C.llavanext_generator_append_tokens(g.ptr, p, C.size_t(len(ids))) })
	if err == nil {
		g.done = false
	}
	return err
}

// Prefill evaluates what was appended (done implicitly by Next, Generate and Score).
func (g *Generator) Prefill() error {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return ErrClosed
	}
	_, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status { return C.llavanext_generator_prefill(g.ptr) })
	g.cb.rethrow()
	return err
}

// Next generates one token. At the end it returns io.EOF (text still pending then comes first
// as a Token with ID -1). A panic in the progress callback is raised again here.
func (g *Generator) Next() (Token, error) {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return Token{}, ErrClosed
	}
	if g.done {
		return Token{}, io.EOF
	}
	var piece *C.char
	var n C.size_t
	var id C.int32_t
	st, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status { return C.llavanext_generator_next(g.ptr, &piece, &n, &id) })
	g.cb.rethrow()
	if err != nil {
		return Token{}, err
	}
	text := ""
	if n > 0 && piece != nil {
		text = C.GoStringN(piece, C.int(n))
	}
	if st == StatusDone {
		g.done = true
		if text == "" {
			return Token{}, io.EOF
		}
		return Token{Piece: text, ID: -1}, nil
	}
	return Token{Piece: text, ID: int32(id)}, nil
}

// GenerateText generates to the end and returns the whole answer.
func (g *Generator) GenerateText() (string, error) {
	var b []byte
	for {
		t, err := g.Next()
		if err == io.EOF {
			return string(b), nil
		}
		if err != nil {
			return string(b), err
		}
		b = append(b, t.Piece...)
	}
}

// Generate is the push helper: fn(piece, tokenID) for every piece until generation stops;
// returning false stops it. A panic in fn stops generation and is raised again here.
func (g *Generator) Generate(fn func(piece string, token int32) bool) error {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return ErrClosed
	}
	state := &tokenState{fn: fn}
	h := cgo.NewHandle(state)
	defer h.Delete()
	_, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status { return C.lnx_generate(g.ptr, C.uintptr_t(h)) })
	g.cb.rethrow()
	if state.panicked {
		panic(state.panicVal)
	}
	return err
}

// AddStopString ends generation when the generated text contains stop.
func (g *Generator) AddStopString(stop string) error {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return ErrClosed
	}
	cs := C.CString(stop)
	defer C.free(unsafe.Pointer(cs))
	_, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status { return C.llavanext_generator_add_stop_string(g.ptr, cs) })
	return err
}

// Score returns the summed natural-log probability of continuation and its token count.
func (g *Generator) Score(continuation string) (float64, int, error) {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return 0, 0, ErrClosed
	}
	cs := C.CString(continuation)
	defer C.free(unsafe.Pointer(cs))
	var v C.double
	var n C.int32_t
	_, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status {
		return C.llavanext_generator_score(&v, &n, g.ptr, cs, C.size_t(len(continuation)))
	})
	g.cb.rethrow()
	return float64(v), int(n), err
}

// Reset forgets the conversation.
func (g *Generator) Reset() {
	defer runtime.KeepAlive(g)
	if g.ptr != nil {
		C.llavanext_generator_reset(g.ptr)
	}
	g.done = false
}

// Logits returns a copy of the last evaluated position's logits.
func (g *Generator) Logits() ([]float32, error) {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return nil, ErrClosed
	}
	var p *C.float
	var n C.int32_t
	if _, err := callOn(generatorErrors(g.ptr), func() C.llavanext_status { return C.llavanext_generator_logits(&p, &n, g.ptr) }); err != nil {
		return nil, err
	}
	out := make([]float32, int(n))
	if n > 0 {
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(p)), int(n)))
	}
	return out, nil
}

// Position is the number of tokens in the conversation so far.
func (g *Generator) Position() int64 {
	defer runtime.KeepAlive(g)
	return int64(C.llavanext_generator_position(g.ptr))
}

// ContextLength is the KV cache capacity in tokens.
func (g *Generator) ContextLength() int64 {
	defer runtime.KeepAlive(g)
	return int64(C.llavanext_generator_context_length(g.ptr))
}

// TokenIDs returns a copy of the conversation's token ids (placeholder-expanded positions hold
// the placeholder id).
func (g *Generator) TokenIDs() []int32 {
	defer runtime.KeepAlive(g)
	if g.ptr == nil {
		return nil
	}
	n := int(C.llavanext_generator_position(g.ptr))
	p := C.llavanext_generator_tokens(g.ptr)
	out := make([]int32, n)
	if n > 0 && p != nil {
		copy(out, unsafe.Slice((*int32)(unsafe.Pointer(p)), n))
	}
	return out
}
