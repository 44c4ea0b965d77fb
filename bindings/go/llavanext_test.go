package llavanext_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	llavanext "github.com/libllavanext/llavanext-go"
)

func dataDir() string {
	if d := os.Getenv("LLAVANEXT_TEST_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "tests", "data")
}

func modelDir() string { return filepath.Join(dataDir(), "tiny-a") }
func videoPath() string {
	return filepath.Join(dataDir(), "media", "clip_h264_160x120_97f.mp4")
}

type referenceCase struct {
	NumFrames      int             `json:"num_frames"`
	Question       string          `json:"question"`
	Conversation   json.RawMessage `json:"conversation"`
	PromptText     string          `json:"prompt_text"`
	InputIDs       []int32         `json:"input_ids"`
	NumInputTokens int             `json:"num_input_tokens"`
	Generation     struct {
		MaxNewTokens  int32   `json:"max_new_tokens"`
		GeneratedIDs  []int32 `json:"generated_ids"`
		GeneratedText string  `json:"generated_text"`
	} `json:"generation"`
}

func reference(t *testing.T) referenceCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(), "reference", "tiny-a", "video8_h264", "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r referenceCase
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func messages(question string) string {
	q, _ := json.Marshal(question)
	return fmt.Sprintf(`[{"role":"user","content":[{"type":"video"},{"type":"text","text":%s}]}]`, q)
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func embeddings(t *testing.T, m *llavanext.Model, frames int) *llavanext.Tensor {
	t.Helper()
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(videoPath(), nil))
	defer s.Close()
	f := must[*llavanext.Frames](t)(s.Uniform(frames))
	defer f.Close()
	enc := must[*llavanext.VisionEncoder](t)(llavanext.NewVisionEncoder(m, nil))
	defer enc.Close()
	feats := must[*llavanext.Tensor](t)(enc.EncodeVideo(f))
	defer feats.Close()
	pool := must[*llavanext.Pooler](t)(llavanext.NewPooler(m, nil))
	defer pool.Close()
	return must[*llavanext.Tensor](t)(pool.Apply(feats))
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestVersion(t *testing.T) {
	if err := llavanext.CheckVersion(); err != nil {
		t.Fatal(err)
	}
	if llavanext.VersionNumber()/10000 != llavanext.HeaderVersionNumber/10000 {
		t.Fatalf("library %s, header %d", llavanext.Version(), llavanext.HeaderVersionNumber)
	}
}

func TestEndToEndMatchesReference(t *testing.T) {
	r := reference(t)
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), nil))
	defer m.Close()
	emb := embeddings(t, m, r.NumFrames)
	defer emb.Close()
	if emb.Kind() != llavanext.TensorVideoEmbeddings {
		t.Fatalf("kind %d", emb.Kind())
	}
	prompt := must[string](t)(m.RenderChat(messages(r.Question), true))
	if prompt != r.PromptText {
		t.Fatalf("prompt %q, want %q", prompt, r.PromptText)
	}
	var stages []llavanext.Stage
	opts := llavanext.Greedy(r.Generation.MaxNewTokens)
	opts.Progress = func(s llavanext.Stage, done, total int64) bool { stages = append(stages, s); return true }
	g := must[*llavanext.Generator](t)(llavanext.NewGenerator(m, opts))
	defer g.Close()
	if err := g.AppendPrompt(prompt, emb); err != nil {
		t.Fatal(err)
	}
	if !equalIDs(g.TokenIDs(), r.InputIDs) {
		t.Fatalf("prompt ids %v, want %v", g.TokenIDs(), r.InputIDs)
	}
	var ids []int32
	var text strings.Builder
	for {
		tok, err := g.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID >= 0 {
			ids = append(ids, tok.ID)
		}
		text.WriteString(tok.Piece)
	}
	if !equalIDs(ids, r.Generation.GeneratedIDs) {
		t.Fatalf("ids %v, want %v", ids, r.Generation.GeneratedIDs)
	}
	if text.String() != r.Generation.GeneratedText {
		t.Fatalf("text %q, want %q", text.String(), r.Generation.GeneratedText)
	}
	sawPrefill := false
	for _, s := range stages {
		sawPrefill = sawPrefill || s == llavanext.StagePrefill
	}
	if !sawPrefill {
		t.Fatalf("no prefill progress: %v", stages)
	}

	// The push helper and GenerateText give the same.
	g.Reset()
	if err := g.AppendPrompt(prompt, emb); err != nil {
		t.Fatal(err)
	}
	var pushed []int32
	if err := g.Generate(func(piece string, id int32) bool {
		if id >= 0 {
			pushed = append(pushed, id)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !equalIDs(pushed, r.Generation.GeneratedIDs) {
		t.Fatalf("pushed %v", pushed)
	}
	g.Reset()
	_ = g.AppendPrompt(prompt, emb)
	if s := must[string](t)(g.GenerateText()); s != r.Generation.GeneratedText {
		t.Fatalf("GenerateText %q", s)
	}
}

func TestMissingModelDirIsIOError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-such-model")
	m, err := llavanext.LoadModel(dir, nil)
	if m != nil || err == nil {
		t.Fatal("loading a missing directory must fail")
	}
	var e *llavanext.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not *llavanext.Error", err)
	}
	if e.Status != llavanext.StatusIO || !errors.Is(err, llavanext.ErrIO) {
		t.Fatalf("status %d, want %d", e.Status, llavanext.StatusIO)
	}
	if !strings.Contains(e.Message, "no-such-model") {
		t.Fatalf("message %q does not name the directory", e.Message)
	}
}

func TestInvalidArgumentsAndState(t *testing.T) {
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(videoPath(), nil))
	defer s.Close()
	if _, err := s.Uniform(0); !errors.Is(err, llavanext.ErrInvalidArgument) {
		t.Fatalf("Uniform(0): %v", err)
	}
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), &llavanext.ModelOptions{LoadMode: llavanext.LoadNoWeights}))
	if _, err := llavanext.NewVisionEncoder(m, nil); !errors.Is(err, llavanext.ErrState) {
		t.Fatalf("encoder without weights: %v", err)
	}
	m.Close()
	m.Close() // idempotent
	if _, err := m.Tokenize("x", true); err != llavanext.ErrClosed {
		t.Fatalf("closed model: %v", err)
	}
}

// A handle's error message follows the handle, not the OS thread: read it from another
// goroutine locked to another thread.
func TestHandleErrorOnAnotherThread(t *testing.T) {
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(videoPath(), nil))
	defer s.Close()
	_, err := s.Uniform(1000000)
	if err == nil || !strings.Contains(err.Error(), "1000000") {
		t.Fatalf("Uniform(1000000): %v", err)
	}
	got := make(chan string)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		got <- s.LastError()
	}()
	if msg := <-got; !strings.Contains(msg, "1000000") {
		t.Fatalf("LastError on another thread: %q", msg)
	}
}

// panicValue runs f and returns what it panicked with (nil if it did not).
func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestPanicInProgressCallbackAbortsAndIsRaisedAgain(t *testing.T) {
	r := reference(t)
	calls := 0
	v := panicValue(func() {
		_, _ = llavanext.LoadModel(modelDir(), &llavanext.ModelOptions{Progress: func(s llavanext.Stage, d, n int64) bool {
			calls++
			if calls == 2 {
				panic("boom in progress")
			}
			return true
		}})
	})
	if v != "boom in progress" {
		t.Fatalf("panic value %v", v)
	}
	if calls != 2 {
		t.Fatalf("%d calls; none may follow the abort", calls)
	}
	// The library is intact.
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), nil))
	defer m.Close()
	emb := embeddings(t, m, r.NumFrames)
	g := must[*llavanext.Generator](t)(llavanext.NewGenerator(m, llavanext.Greedy(4)))
	defer g.Close()
	_ = g.AppendPrompt(must[string](t)(m.RenderChat(messages(r.Question), true)), emb)
	var ids []int32
	for {
		tok, err := g.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID >= 0 {
			ids = append(ids, tok.ID)
		}
	}
	if !equalIDs(ids, r.Generation.GeneratedIDs[:4]) {
		t.Fatalf("ids %v", ids)
	}
}

func TestPanicInEncoderGeneratorAndTokenCallbacks(t *testing.T) {
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), nil))
	defer m.Close()
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(videoPath(), nil))
	defer s.Close()
	f := must[*llavanext.Frames](t)(s.Uniform(2))
	enc := must[*llavanext.VisionEncoder](t)(llavanext.NewVisionEncoder(m, &llavanext.VisionEncoderOptions{
		Progress: func(st llavanext.Stage, d, n int64) bool { panic(fmt.Errorf("encoder %v", st)) }}))
	defer enc.Close()
	v := panicValue(func() { _, _ = enc.EncodeVideo(f) })
	if e, ok := v.(error); !ok || e.Error() != "encoder encode" {
		t.Fatalf("encoder panic %v", v)
	}
	emb := embeddings(t, m, 2)
	g := must[*llavanext.Generator](t)(llavanext.NewGenerator(m, &llavanext.GeneratorOptions{
		Progress: func(st llavanext.Stage, d, n int64) bool { panic("generator " + st.String()) }}))
	defer g.Close()
	_ = g.AppendPrompt("USER: <video> hi ASSISTANT:", emb)
	if v := panicValue(func() { _, _ = g.Next() }); v != "generator prefill" {
		t.Fatalf("generator panic %v", v)
	}
	g2 := must[*llavanext.Generator](t)(llavanext.NewGenerator(m, llavanext.Greedy(8)))
	defer g2.Close()
	_ = g2.AppendPrompt("USER: hello ASSISTANT:")
	n := 0
	if v := panicValue(func() {
		_ = g2.Generate(func(string, int32) bool { n++; panic("token callback") })
	}); v != "token callback" || n != 1 {
		t.Fatalf("token panic %v after %d calls", v, n)
	}
}

func TestProgressFalseAborts(t *testing.T) {
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), nil))
	defer m.Close()
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(videoPath(), nil))
	defer s.Close()
	f := must[*llavanext.Frames](t)(s.Uniform(2))
	enc := must[*llavanext.VisionEncoder](t)(llavanext.NewVisionEncoder(m, &llavanext.VisionEncoderOptions{
		Progress: func(llavanext.Stage, int64, int64) bool { return false }}))
	defer enc.Close()
	if _, err := enc.EncodeVideo(f); !errors.Is(err, llavanext.ErrAborted) {
		t.Fatalf("got %v", err)
	}
}

func TestTokenizerRoundTripAndRenderChat(t *testing.T) {
	r := reference(t)
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), &llavanext.ModelOptions{LoadMode: llavanext.LoadNoWeights}))
	defer m.Close()
	text := "Hello world! Ünïcödé ✓ 線 and numbers 12345."
	ids := must[[]int32](t)(m.Tokenize(text, true))
	if ids[0] != m.TokenID(llavanext.TokenBOS) {
		t.Fatalf("no BOS: %v", ids)
	}
	if back := must[string](t)(m.Detokenize(ids, true)); back != text {
		t.Fatalf("round trip %q", back)
	}
	if _, err := m.Tokenize("bad \xff", true); !errors.Is(err, llavanext.ErrInvalidArgument) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if p := must[string](t)(m.RenderChat(string(r.Conversation), true)); p != r.PromptText {
		t.Fatalf("render %q", p)
	}
	video := m.TokenID(llavanext.TokenVideo)
	var collapsed []int32
	for k, id := range r.InputIDs {
		if !(id == video && k > 0 && r.InputIDs[k-1] == id) {
			collapsed = append(collapsed, id)
		}
	}
	if got := must[[]int32](t)(m.Tokenize(r.PromptText, true)); !equalIDs(got, collapsed) {
		t.Fatalf("prompt ids %v", got)
	}
	if _, err := m.RenderChat("not json", true); err == nil {
		t.Fatal("bad JSON must fail")
	}
	b := must[llavanext.Budget](t)(m.PlanBudget(llavanext.BudgetRequest{Frames: 8, TextTokens: 20, MaxNewTokens: 24}))
	if b.VisualTokens != 32 || !b.Fits {
		t.Fatalf("budget %+v", b)
	}
}

func TestModelSharedAndHandlesMoveBetweenGoroutines(t *testing.T) {
	m := must[*llavanext.Model](t)(llavanext.LoadModel(modelDir(), nil))
	defer m.Close()
	var wg sync.WaitGroup
	results := make([][]int32, 4)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], _ = m.Tokenize("the same text from many goroutines", true)
		}(i)
	}
	emb := embeddings(t, m, 2)
	g := must[*llavanext.Generator](t)(llavanext.NewGenerator(m, llavanext.Greedy(5)))
	done := make(chan string)
	go func() {
		defer g.Close()
		_ = g.AppendPrompt("USER: <video> what? ASSISTANT:", emb)
		s, _ := g.GenerateText()
		done <- s
	}()
	if s := <-done; s == "" {
		t.Fatal("empty answer")
	}
	wg.Wait()
	for _, r := range results {
		if !equalIDs(r, results[0]) || len(r) == 0 {
			t.Fatalf("results differ: %v", results)
		}
	}
}

func TestFramesAndTensors(t *testing.T) {
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(videoPath(), nil))
	defer s.Close()
	info := must[llavanext.MediaInfo](t)(s.Info())
	if info.Width != 160 || info.Height != 120 || info.FrameCount != 97 {
		t.Fatalf("info %+v", info)
	}
	f := must[*llavanext.Frames](t)(s.Uniform(4))
	if len(f.Bytes()) != 4*160*120*3 || &f.Frame(1)[0] != &f.Bytes()[160*120*3] || f.SourceIndex(1) != 24 {
		t.Fatal("frame data")
	}
	f.Close()
	if f.Bytes() != nil || f.Count() != 0 {
		t.Fatal("closed frames")
	}
	a := must[*llavanext.Tensor](t)(llavanext.NewTensor(llavanext.TensorOther, []int64{2, 2}, []float32{1, 2.5, -3, 4}, 0, 0))
	both := must[*llavanext.Tensor](t)(llavanext.ConcatTensors([]*llavanext.Tensor{a, a}))
	if sh := both.Shape(); len(sh) != 2 || sh[0] != 4 || sh[1] != 2 || both.Data()[5] != 2.5 {
		t.Fatalf("concat %v %v", sh, both.Data())
	}
	if err := s.BeginUniform(8); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for {
		b, err := s.NextBatch(3)
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			break
		}
		counts = append(counts, b.Count())
		b.Close()
	}
	if fmt.Sprint(counts) != "[3 3 2]" {
		t.Fatalf("batches %v", counts)
	}
}

// tests/data/tiny-ov (LLaVA-OneVision: SigLIP + Qwen2): Project, then Pool (the resize); the
// generator adds the newline after the video; greedy ids as transformers gives them.
func TestOneVisionVideoMatchesReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(dataDir(), "reference", "tiny-ov", "video8_mjpeg", "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Conversation   json.RawMessage `json:"conversation"`
		PromptText     string          `json:"prompt_text"`
		NumInputTokens int             `json:"num_input_tokens"`
		GeneratedIDs   []int32         `json:"generated_ids"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	m := must[*llavanext.Model](t)(llavanext.LoadModel(filepath.Join(dataDir(), "tiny-ov"), nil))
	defer m.Close()
	s := must[*llavanext.FrameSampler](t)(llavanext.OpenFrameSampler(filepath.Join(dataDir(), "media", "clip_mjpeg_96x72_45f.avi"), nil))
	defer s.Close()
	f := must[*llavanext.Frames](t)(s.Uniform(8))
	defer f.Close()
	enc := must[*llavanext.VisionEncoder](t)(llavanext.NewVisionEncoder(m, nil))
	defer enc.Close()
	feats := must[*llavanext.Tensor](t)(enc.EncodeVideo(f))
	defer feats.Close()
	pool := must[*llavanext.Pooler](t)(llavanext.NewPooler(m, nil))
	defer pool.Close()
	proj := must[*llavanext.Tensor](t)(pool.Project(feats))
	defer proj.Close()
	if proj.Kind() != llavanext.TensorVideoProjected {
		t.Fatalf("kind %d", proj.Kind())
	}
	emb := must[*llavanext.Tensor](t)(pool.Pool(proj))
	defer emb.Close()
	prompt := must[string](t)(m.RenderChat(string(r.Conversation), true))
	if prompt != r.PromptText {
		t.Fatalf("prompt %q, want %q", prompt, r.PromptText)
	}
	g := must[*llavanext.Generator](t)(llavanext.NewGenerator(m, llavanext.Greedy(12)))
	defer g.Close()
	if err := g.AppendPrompt(prompt, emb); err != nil {
		t.Fatal(err)
	}
	if len(g.TokenIDs()) != r.NumInputTokens {
		t.Fatalf("%d prompt tokens, want %d", len(g.TokenIDs()), r.NumInputTokens)
	}
	var ids []int32
	for {
		tok, err := g.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID >= 0 {
			ids = append(ids, tok.ID)
		}
	}
	if !equalIDs(ids, r.GeneratedIDs) {
		t.Fatalf("ids %v, want %v", ids, r.GeneratedIDs)
	}
}
