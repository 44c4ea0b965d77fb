package llavanext

/*
#include <stdint.h>
#include <stdlib.h>
#include <llavanext/llavanext.h>

static llavanext_status lnx_frames_from_rgb(llavanext_frames **out, const uint8_t *rgb,
                                            int32_t width, int32_t height) {
    const uint8_t *planes[3] = {rgb, NULL, NULL};
    int32_t strides[3] = {width * 3, 0, 0};
    return llavanext_frames_from_host(out, LLAVANEXT_PIXEL_RGB24, planes, strides, width, height);
}
*/
import "C"

import (
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Frames is a batch of RGB24 frames of one size (llavanext_frames).
type Frames struct {
	ptr       *C.llavanext_frames
	closeOnce sync.Once
}

func newFrames(p *C.llavanext_frames) *Frames {
	f := &Frames{ptr: p}
	runtime.SetFinalizer(f, (*Frames).Close)
	return f
}

// FramesFromRGB copies one frame of height rows of width*3 RGB bytes.
func FramesFromRGB(rgb []byte, width, height int) (*Frames, error) {
	if width <= 0 || height <= 0 || len(rgb) < width*height*3 {
		return nil, &Error{Status: StatusInvalidArgument, Message: "pixel buffer smaller than width x height x 3"}
	}
	var out *C.llavanext_frames
	_, err := call(func() C.llavanext_status {
		return C.lnx_frames_from_rgb(&out, (*C.uint8_t)(unsafe.Pointer(&rgb[0])), C.int32_t(width), C.int32_t(height))
	})
	if err != nil {
		return nil, err
	}
	return newFrames(out), nil
}

// Close frees the frames. Idempotent. Slices returned by Bytes/Frame become invalid.
func (f *Frames) Close() error {
	f.closeOnce.Do(func() {
		runtime.SetFinalizer(f, nil)
		C.llavanext_frames_free(f.ptr)
		f.ptr = nil
	})
	return nil
}

// Count is the number of frames (0 after Close).
func (f *Frames) Count() int {
	defer runtime.KeepAlive(f)
	return int(C.llavanext_frames_count(f.ptr))
}

// Width in pixels.
func (f *Frames) Width() int {
	defer runtime.KeepAlive(f)
	return int(C.llavanext_frames_width(f.ptr))
}

// Height in pixels.
func (f *Frames) Height() int {
	defer runtime.KeepAlive(f)
	return int(C.llavanext_frames_height(f.ptr))
}

// Bytes returns all frames' pixels (Count x Height x Width x 3 bytes) without copying: the
// slice points into the library's memory and is valid only until Close, so keep the Frames
// reachable (runtime.KeepAlive) while using it, and do not write to it. nil after Close.
func (f *Frames) Bytes() []byte {
	defer runtime.KeepAlive(f)
	if f.ptr == nil {
		return nil
	}
	n := f.Count() * f.Height() * f.Width() * 3
	p := C.llavanext_frames_data(f.ptr, 0)
	if n == 0 || p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), n)
}

// Frame returns the pixels of frame index without copying (see Bytes), nil if out of range.
func (f *Frames) Frame(index int) []byte {
	defer runtime.KeepAlive(f)
	if f.ptr == nil {
		return nil
	}
	p := C.llavanext_frames_data(f.ptr, C.int32_t(index))
	if p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), f.Height()*f.Width()*3)
}

// SourceIndex is the 0-based index of the frame in the source's decode order (-1: unknown).
func (f *Frames) SourceIndex(index int) int64 {
	defer runtime.KeepAlive(f)
	return int64(C.llavanext_frames_source_index(f.ptr, C.int32_t(index)))
}

// Timestamp is the presentation time of the frame in seconds (NaN: unknown).
func (f *Frames) Timestamp(index int) float64 {
	defer runtime.KeepAlive(f)
	if f.ptr == nil {
		return math.NaN()
	}
	return float64(C.llavanext_frames_timestamp(f.ptr, C.int32_t(index)))
}

// TensorKind says what a tensor holds (llavanext_tensor_kind).
type TensorKind int32

// Tensor kinds.
const (
	TensorVideoPixels     TensorKind = C.LLAVANEXT_TENSOR_VIDEO_PIXELS
	TensorImagePixels     TensorKind = C.LLAVANEXT_TENSOR_IMAGE_PIXELS
	TensorVideoFeatures   TensorKind = C.LLAVANEXT_TENSOR_VIDEO_FEATURES
	TensorImageFeatures   TensorKind = C.LLAVANEXT_TENSOR_IMAGE_FEATURES
	TensorVideoPooled     TensorKind = C.LLAVANEXT_TENSOR_VIDEO_POOLED
	TensorVideoEmbeddings TensorKind = C.LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS
	TensorImageProjected  TensorKind = C.LLAVANEXT_TENSOR_IMAGE_PROJECTED
	TensorImageEmbeddings TensorKind = C.LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS
	TensorOther           TensorKind = C.LLAVANEXT_TENSOR_OTHER
	// TensorVideoProjected: LLaVA-OneVision's projected frames before the resize (library 0.2).
	TensorVideoProjected TensorKind = C.LLAVANEXT_TENSOR_VIDEO_PROJECTED
)

// Tensor is a float32 array with a shape and a kind (llavanext_tensor).
type Tensor struct {
	ptr       *C.llavanext_tensor
	closeOnce sync.Once
}

func newTensor(p *C.llavanext_tensor) *Tensor {
	t := &Tensor{ptr: p}
	runtime.SetFinalizer(t, (*Tensor).Close)
	return t
}

// NewTensor creates a tensor holding a copy of data with the given shape; imageHeight and
// imageWidth matter only for image kinds.
func NewTensor(kind TensorKind, shape []int64, data []float32, imageHeight, imageWidth int) (*Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if len(shape) == 0 || n != int64(len(data)) {
		return nil, &Error{Status: StatusInvalidArgument, Message: "data length does not match the shape"}
	}
	var dp *C.float
	if len(data) > 0 {
		dp = (*C.float)(unsafe.Pointer(&data[0]))
	}
	var out *C.llavanext_tensor
	_, err := call(func() C.llavanext_status {
		return C.llavanext_tensor_create(&out, C.int32_t(kind), C.int32_t(len(shape)),
			(*C.int64_t)(unsafe.Pointer(&shape[0])), dp, C.int32_t(imageHeight), C.int32_t(imageWidth))
	})
	if err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// ConcatTensors concatenates tensors of one kind along their first dimension (e.g. the video
// embeddings of frame batches encoded one after another).
func ConcatTensors(tensors []*Tensor) (*Tensor, error) {
	ptrs := make([]*C.llavanext_tensor, len(tensors))
	for i, t := range tensors {
		if t == nil || t.ptr == nil {
			return nil, ErrClosed
		}
		ptrs[i] = t.ptr
	}
	var pp **C.llavanext_tensor
	if len(ptrs) > 0 {
		pp = &ptrs[0]
	}
	var out *C.llavanext_tensor
	_, err := call(func() C.llavanext_status { return C.llavanext_tensor_concat(&out, pp, C.int32_t(len(ptrs))) })
	runtime.KeepAlive(tensors)
	if err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// Close frees the tensor. Idempotent. Slices returned by Data become invalid.
func (t *Tensor) Close() error {
	t.closeOnce.Do(func() {
		runtime.SetFinalizer(t, nil)
		C.llavanext_tensor_free(t.ptr)
		t.ptr = nil
	})
	return nil
}

// Kind says what the tensor holds.
func (t *Tensor) Kind() TensorKind {
	defer runtime.KeepAlive(t)
	return TensorKind(C.llavanext_tensor_kind(t.ptr))
}

// Shape is the size of every dimension.
func (t *Tensor) Shape() []int64 {
	defer runtime.KeepAlive(t)
	if t.ptr == nil {
		return nil
	}
	nd := int(C.llavanext_tensor_ndim(t.ptr))
	s := make([]int64, nd)
	for i := range s {
		s[i] = int64(C.llavanext_tensor_dim(t.ptr, C.int32_t(i)))
	}
	return s
}

// Numel is the total number of elements.
func (t *Tensor) Numel() int64 {
	defer runtime.KeepAlive(t)
	return int64(C.llavanext_tensor_numel(t.ptr))
}

// Data returns the values, row-major, without copying: valid only until Close (keep the
// Tensor reachable while using the slice, and do not write to it). nil after Close.
func (t *Tensor) Data() []float32 {
	defer runtime.KeepAlive(t)
	if t.ptr == nil {
		return nil
	}
	n := int(t.Numel())
	p := C.llavanext_tensor_data(t.ptr)
	if n == 0 || p == nil {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n)
}

// ImageSize is the original image height and width for image kinds (0, 0 otherwise).
func (t *Tensor) ImageSize() (height, width int) {
	defer runtime.KeepAlive(t)
	return int(C.llavanext_tensor_image_height(t.ptr)), int(C.llavanext_tensor_image_width(t.ptr))
}

// FrameSamplerOptions are the options of OpenFrameSampler; nil fields keep the defaults.
type FrameSamplerOptions struct {
	Threads        *int32
	ApplyRotation  *bool
	SkipCorrupt    *bool
	MaxFramePixels *int64
}

func (o *FrameSamplerOptions) params() C.llavanext_frame_sampler_params {
	var p C.llavanext_frame_sampler_params
	C.llavanext_frame_sampler_params_init(&p, C.size_t(unsafe.Sizeof(p)))
	if o == nil {
		return p
	}
	if o.Threads != nil {
		p.threads = C.int32_t(*o.Threads)
	}
	if o.ApplyRotation != nil {
		p.apply_rotation = boolInt(*o.ApplyRotation)
	}
	if o.SkipCorrupt != nil {
		p.skip_corrupt = boolInt(*o.SkipCorrupt)
	}
	if o.MaxFramePixels != nil {
		p.max_frame_pixels = C.int64_t(*o.MaxFramePixels)
	}
	return p
}

// MediaInfo describes a media source.
type MediaInfo struct {
	Width, Height   int
	Rotation        int
	IsImage         bool
	FrameCountExact bool
	FrameCount      int64
	Duration        float64
	FPS             float64
	Container       string
	Codec           string
}

// FrameSampler is an opened video or image (llavanext_frame_sampler).
type FrameSampler struct {
	ptr       *C.llavanext_frame_sampler
	closeOnce sync.Once
}

func newSampler(p *C.llavanext_frame_sampler) *FrameSampler {
	s := &FrameSampler{ptr: p}
	runtime.SetFinalizer(s, (*FrameSampler).Close)
	return s
}

// OpenFrameSampler opens a media file. opts may be nil.
func OpenFrameSampler(path string, opts *FrameSamplerOptions) (*FrameSampler, error) {
	p := opts.params()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var out *C.llavanext_frame_sampler
	if _, err := call(func() C.llavanext_status { return C.llavanext_frame_sampler_open(&out, cpath, &p) }); err != nil {
		return nil, err
	}
	return newSampler(out), nil
}

// OpenFrameSamplerMemory opens media held in memory (the bytes are copied).
func OpenFrameSamplerMemory(data []byte, opts *FrameSamplerOptions) (*FrameSampler, error) {
	p := opts.params()
	var dp unsafe.Pointer
	if len(data) > 0 {
		dp = unsafe.Pointer(&data[0])
	}
	var out *C.llavanext_frame_sampler
	_, err := call(func() C.llavanext_status {
		return C.llavanext_frame_sampler_open_memory(&out, dp, C.size_t(len(data)), &p)
	})
	if err != nil {
		return nil, err
	}
	return newSampler(out), nil
}

// Close frees the sampler. Idempotent.
func (s *FrameSampler) Close() error {
	s.closeOnce.Do(func() {
		runtime.SetFinalizer(s, nil)
		C.llavanext_frame_sampler_free(s.ptr)
		s.ptr = nil
	})
	return nil
}

func (s *FrameSampler) frames(f func(out **C.llavanext_frames) C.llavanext_status) (*Frames, error) {
	defer runtime.KeepAlive(s)
	if s.ptr == nil {
		return nil, ErrClosed
	}
	var out *C.llavanext_frames
	if _, err := callOn(samplerErrors(s.ptr), func() C.llavanext_status { return f(&out) }); err != nil {
		return nil, err
	}
	return newFrames(out), nil
}

// Info describes the source.
func (s *FrameSampler) Info() (MediaInfo, error) {
	defer runtime.KeepAlive(s)
	if s.ptr == nil {
		return MediaInfo{}, ErrClosed
	}
	var i C.llavanext_media_info
	i.struct_size = C.uint32_t(unsafe.Sizeof(i))
	if _, err := callOn(samplerErrors(s.ptr), func() C.llavanext_status { return C.llavanext_frame_sampler_info(&i, s.ptr) }); err != nil {
		return MediaInfo{}, err
	}
	return MediaInfo{int(i.width), int(i.height), int(i.rotation), i.is_image != 0, i.frame_count_exact != 0,
		int64(i.frame_count), float64(i.duration), float64(i.fps),
		C.GoString(&i.container[0]), C.GoString(&i.codec[0])}, nil
}

// Uniform returns count frames spread uniformly (frame k is index floor(k*frame_count/count)).
func (s *FrameSampler) Uniform(count int) (*Frames, error) {
	return s.frames(func(out **C.llavanext_frames) C.llavanext_status {
		return C.llavanext_frame_sampler_uniform(out, s.ptr, C.int32_t(count))
	})
}

// ByFPS returns frames at fps per second, at most maxCount.
func (s *FrameSampler) ByFPS(fps float64, maxCount int) (*Frames, error) {
	return s.frames(func(out **C.llavanext_frames) C.llavanext_status {
		return C.llavanext_frame_sampler_by_fps(out, s.ptr, C.double(fps), C.int32_t(maxCount))
	})
}

// AtTimes returns the frames showing at the given times in seconds.
func (s *FrameSampler) AtTimes(times []float64) (*Frames, error) {
	var p *C.double
	if len(times) > 0 {
		p = (*C.double)(unsafe.Pointer(&times[0]))
	}
	return s.frames(func(out **C.llavanext_frames) C.llavanext_status {
		return C.llavanext_frame_sampler_at_times(out, s.ptr, p, C.int32_t(len(times)))
	})
}

// AtIndices returns the frames with the given 0-based indices (ascending).
func (s *FrameSampler) AtIndices(indices []int64) (*Frames, error) {
	var p *C.int64_t
	if len(indices) > 0 {
		p = (*C.int64_t)(unsafe.Pointer(&indices[0]))
	}
	return s.frames(func(out **C.llavanext_frames) C.llavanext_status {
		return C.llavanext_frame_sampler_at_indices(out, s.ptr, p, C.int32_t(len(indices)))
	})
}

// BeginUniform plans count uniformly spread frames; NextBatch then returns them in batches.
func (s *FrameSampler) BeginUniform(count int) error {
	defer runtime.KeepAlive(s)
	if s.ptr == nil {
		return ErrClosed
	}
	_, err := callOn(samplerErrors(s.ptr), func() C.llavanext_status { return C.llavanext_frame_sampler_begin_uniform(s.ptr, C.int32_t(count)) })
	return err
}

// NextBatch returns the next up to maxBatch planned frames, or (nil, nil) when all were
// returned.
func (s *FrameSampler) NextBatch(maxBatch int) (*Frames, error) {
	defer runtime.KeepAlive(s)
	if s.ptr == nil {
		return nil, ErrClosed
	}
	var out *C.llavanext_frames
	st, err := callOn(samplerErrors(s.ptr), func() C.llavanext_status { return C.llavanext_frame_sampler_next(&out, s.ptr, C.int32_t(maxBatch)) })
	if err != nil || st == StatusDone {
		return nil, err
	}
	return newFrames(out), nil
}
