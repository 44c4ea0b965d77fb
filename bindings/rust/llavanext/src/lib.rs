//! Safe Rust bindings of libllavanext: run LLaVA-NeXT-Video models on a CPU.
//!
//! The pipeline: [`Model::load`] → [`FrameSampler::open`] + [`FrameSampler::uniform`] →
//! [`VisionEncoder::encode_video`] → [`Pooler::apply`] → [`Model::render_chat`] →
//! [`Generator::append_prompt`] → [`Generator::pieces`] (or [`Generator::next_token`]).
//!
//! ```no_run
//! use llavanext::*;
//! # fn main() -> Result<()> {
//! let model = Model::load("tiny-a")?;
//! let frames = FrameSampler::open("clip.mp4")?.uniform(8)?;
//! let features = VisionEncoder::new(&model)?.encode_video(&frames)?;
//! let embeddings = Pooler::new(&model)?.apply(&features)?;
//! let prompt = model.render_chat(
//!     r#"[{"role":"user","content":[{"type":"video"},{"type":"text","text":"Why?"}]}]"#,
//!     true,
//! )?;
//! let mut generator = Generator::with_options(&model, GeneratorOptions::greedy().max_new_tokens(24))?;
//! generator.append_prompt(&prompt, &[&embeddings])?;
//! for piece in generator.pieces() {
//!     print!("{}", piece?);
//! }
//! # Ok(()) }
//! ```
//!
//! Every handle frees its C object on drop. All handles are `Send` (the C library lets every
//! handle move between threads); only [`Model`] is `Sync` (shared by many threads at once).
//! A panic inside a callback never crosses into C: it is caught, the library is told to abort
//! (the call fails with `LLAVANEXT_E_ABORTED` internally), and the panic is resumed once the C
//! call has returned.

use std::any::Any;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

pub use llavanext_sys as sys;

/// The library version this crate was written for (LLAVANEXT_VERSION_NUMBER's encoding).
pub const BINDING_VERSION_NUMBER: i32 = 100;

// ---- errors -------------------------------------------------------------------------------------

/// A failed call: the (negative) `llavanext_status` and the library's detail message
/// (`llavanext_last_error()`: what failed and where).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Status values (`enum llavanext_status_code`), as `i32`.
pub mod status {
    use super::sys;
    pub const OK: i32 = sys::LLAVANEXT_OK;
    pub const DONE: i32 = sys::LLAVANEXT_DONE;
    pub const E_INVALID_ARGUMENT: i32 = sys::LLAVANEXT_E_INVALID_ARGUMENT;
    pub const E_NO_MEMORY: i32 = sys::LLAVANEXT_E_NO_MEMORY;
    pub const E_IO: i32 = sys::LLAVANEXT_E_IO;
    pub const E_FORMAT: i32 = sys::LLAVANEXT_E_FORMAT;
    pub const E_UNSUPPORTED: i32 = sys::LLAVANEXT_E_UNSUPPORTED;
    pub const E_MEDIA: i32 = sys::LLAVANEXT_E_MEDIA;
    pub const E_CONTEXT_FULL: i32 = sys::LLAVANEXT_E_CONTEXT_FULL;
    pub const E_ABORTED: i32 = sys::LLAVANEXT_E_ABORTED;
    pub const E_INTERNAL: i32 = sys::LLAVANEXT_E_INTERNAL;
    pub const E_STATE: i32 = sys::LLAVANEXT_E_STATE;
    pub const E_LIMIT: i32 = sys::LLAVANEXT_E_LIMIT;
    pub const E_TEMPLATE: i32 = sys::LLAVANEXT_E_TEMPLATE;
}

impl Error {
    /// The error of a call that just returned `status`, with this thread's last error message.
    fn last(status: i32) -> Error {
        let message = unsafe { cstr(sys::llavanext_last_error()) };
        Error { status, message }
    }

    fn binding(status: i32, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// The library's short description of the status.
    pub fn status_str(&self) -> String {
        status_string(self.status)
    }

    pub fn is_aborted(&self) -> bool {
        self.status == status::E_ABORTED
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.status_str(), self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A static English description of a status value.
pub fn status_string(status: i32) -> String {
    unsafe { cstr(sys::llavanext_status_string(status)) }
}

unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Copies a handle's last error (`llavanext_<object>_last_error`) into a String.
fn read_error(read: impl Fn(*mut c_char, usize) -> usize) -> String {
    let n = read(ptr::null_mut(), 0);
    let mut buf = vec![0u8; n + 1];
    read(buf.as_mut_ptr() as *mut c_char, n + 1);
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `check` for a call on a handle: the message is the handle's own, not the thread's.
fn check_on(st: i32, read: impl Fn(*mut c_char, usize) -> usize) -> Result<i32> {
    if st < 0 {
        Err(Error { status: st, message: read_error(read) })
    } else {
        Ok(st)
    }
}

fn check(st: i32) -> Result<i32> {
    if st < 0 {
        Err(Error::last(st))
    } else {
        Ok(st)
    }
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::binding(status::E_INVALID_ARGUMENT, "string contains a NUL byte"))
}

fn c_path(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::binding(status::E_INVALID_ARGUMENT, "path contains a NUL byte"))
}

/// Takes a string the library gave away (freed with llavanext_free).
unsafe fn take_string(p: *mut c_char) -> String {
    let s = cstr(p);
    sys::llavanext_free(p as *mut c_void);
    s
}

// ---- version ------------------------------------------------------------------------------------

/// Version of the linked library, "MAJOR.MINOR.PATCH".
pub fn version() -> String {
    unsafe { cstr(sys::llavanext_version()) }
}

/// Version of the linked library as `major * 10000 + minor * 100 + patch`.
pub fn version_number() -> i32 {
    unsafe { sys::llavanext_version_number() }
}

/// Checks that the linked library has the major version this crate was written for and is not
/// older. Called by [`Model::load`].
pub fn check_version() -> Result<()> {
    let n = version_number();
    if n / 10000 != BINDING_VERSION_NUMBER / 10000 || n < BINDING_VERSION_NUMBER {
        return Err(Error::binding(
            status::E_UNSUPPORTED,
            format!("libllavanext {} is not compatible with this crate (written for 0.1.0)", version()),
        ));
    }
    Ok(())
}

// ---- enumerations -------------------------------------------------------------------------------

/// Stages reported to progress callbacks (`enum llavanext_stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Load,
    Sample,
    Encode,
    Prefill,
    Generate,
    Other(i32),
}

impl Stage {
    fn from_raw(v: i32) -> Stage {
        match v as u32 {
            sys::LLAVANEXT_STAGE_LOAD => Stage::Load,
            sys::LLAVANEXT_STAGE_SAMPLE => Stage::Sample,
            sys::LLAVANEXT_STAGE_ENCODE => Stage::Encode,
            sys::LLAVANEXT_STAGE_PREFILL => Stage::Prefill,
            sys::LLAVANEXT_STAGE_GENERATE => Stage::Generate,
            _ => Stage::Other(v),
        }
    }
}

/// Log levels (`enum llavanext_log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
}

impl LogLevel {
    fn from_raw(v: i32) -> LogLevel {
        match v as u32 {
            sys::LLAVANEXT_LOG_ERROR => LogLevel::Error,
            sys::LLAVANEXT_LOG_WARNING => LogLevel::Warning,
            sys::LLAVANEXT_LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

/// How [`Model::load_with`] makes the weights available (`enum llavanext_load_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadMode {
    #[default]
    Mmap,
    Read,
    /// Config, tokenizer and template only.
    NoWeights,
}

/// Compute precision of the large matrix products (`enum llavanext_precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// BF16 where the CPU and the build support it, else F32.
    Auto,
    /// float32: the path that matches the reference (the library's default).
    F32,
    /// bf16 products with f32 accumulation and a half-precision KV cache.
    Bf16,
}

/// Special tokens (`enum llavanext_special_token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialToken {
    Bos,
    Eos,
    Pad,
    Unk,
    Video,
    Image,
}

/// What a tensor holds (`enum llavanext_tensor_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    VideoPixels,
    ImagePixels,
    VideoFeatures,
    ImageFeatures,
    VideoPooled,
    VideoEmbeddings,
    ImageProjected,
    ImageEmbeddings,
    Other,
    /// LLaVA-OneVision: each frame's projected grid before the resize (library 0.2).
    VideoProjected,
}

impl TensorKind {
    fn to_raw(self) -> i32 {
        (match self {
            TensorKind::VideoPixels => sys::LLAVANEXT_TENSOR_VIDEO_PIXELS,
            TensorKind::ImagePixels => sys::LLAVANEXT_TENSOR_IMAGE_PIXELS,
            TensorKind::VideoFeatures => sys::LLAVANEXT_TENSOR_VIDEO_FEATURES,
            TensorKind::ImageFeatures => sys::LLAVANEXT_TENSOR_IMAGE_FEATURES,
            TensorKind::VideoPooled => sys::LLAVANEXT_TENSOR_VIDEO_POOLED,
            TensorKind::VideoEmbeddings => sys::LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS,
            TensorKind::ImageProjected => sys::LLAVANEXT_TENSOR_IMAGE_PROJECTED,
            TensorKind::ImageEmbeddings => sys::LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS,
            TensorKind::Other => sys::LLAVANEXT_TENSOR_OTHER,
            TensorKind::VideoProjected => sys::LLAVANEXT_TENSOR_VIDEO_PROJECTED,
        }) as i32
    }

    fn from_raw(v: i32) -> TensorKind {
        match v as u32 {
            sys::LLAVANEXT_TENSOR_VIDEO_PIXELS => TensorKind::VideoPixels,
            sys::LLAVANEXT_TENSOR_IMAGE_PIXELS => TensorKind::ImagePixels,
            sys::LLAVANEXT_TENSOR_VIDEO_FEATURES => TensorKind::VideoFeatures,
            sys::LLAVANEXT_TENSOR_IMAGE_FEATURES => TensorKind::ImageFeatures,
            sys::LLAVANEXT_TENSOR_VIDEO_POOLED => TensorKind::VideoPooled,
            sys::LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS => TensorKind::VideoEmbeddings,
            sys::LLAVANEXT_TENSOR_IMAGE_PROJECTED => TensorKind::ImageProjected,
            sys::LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS => TensorKind::ImageEmbeddings,
            sys::LLAVANEXT_TENSOR_VIDEO_PROJECTED => TensorKind::VideoProjected,
            _ => TensorKind::Other,
        }
    }
}

/// Pooling modes (`enum llavanext_pool_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolMode {
    /// As config.json says.
    #[default]
    Default,
    Average,
    Max,
}

// ---- callbacks ----------------------------------------------------------------------------------

type ProgressFn = Box<dyn FnMut(Stage, i64, i64) -> bool + Send>;
/// A boxed log callback: `(level, message)`, possibly called from several threads.
pub type LogFn = Box<dyn Fn(LogLevel, &str) + Send + Sync>;

/// The Rust side of one handle's progress/log callbacks, at a stable heap address given to C
/// as `user_data`. A panic in a progress callback is caught in the trampoline and kept here;
/// [`Callbacks::finish`] resumes it after the C call has returned.
struct Callbacks {
    progress: Mutex<Option<ProgressFn>>,
    log: Option<LogFn>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe extern "C" fn progress_trampoline(stage: i32, done: i64, total: i64, user_data: *mut c_void) -> i32 {
    let cbs = &*(user_data as *const Callbacks);
    if lock(&cbs.panic).is_some() {
        return 1;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut f = lock(&cbs.progress);
        match f.as_mut() {
            Some(f) => f(Stage::from_raw(stage), done, total),
            None => true,
        }
    }));
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(payload) => {
            *lock(&cbs.panic) = Some(payload);
            1
        }
    }
}

unsafe extern "C" fn log_trampoline(level: i32, message: *const c_char, user_data: *mut c_void) {
    let cbs = &*(user_data as *const Callbacks);
    if let Some(f) = cbs.log.as_ref() {
        let text = cstr(message);
        // Logging cannot abort anything: a panic is dropped rather than unwound into C.
        let _ = catch_unwind(AssertUnwindSafe(|| f(LogLevel::from_raw(level), &text)));
    }
}

/// Owns a `Callbacks` through a raw pointer (C holds a copy of it as user_data).
struct CallbackBox(*mut Callbacks);

unsafe impl Send for CallbackBox {}
unsafe impl Sync for CallbackBox {}

impl CallbackBox {
    fn new(progress: Option<ProgressFn>, log: Option<LogFn>) -> Option<CallbackBox> {
        if progress.is_none() && log.is_none() {
            return None;
        }
        let b = Box::new(Callbacks { progress: Mutex::new(progress), log, panic: Mutex::new(None) });
        Some(CallbackBox(Box::into_raw(b)))
    }

    fn get(&self) -> &Callbacks {
        unsafe { &*self.0 }
    }

    /// Fills the C callback fields of a params struct.
    fn install(
        opt: &Option<CallbackBox>,
        progress: &mut sys::llavanext_progress_callback,
        progress_ud: &mut *mut c_void,
        log: &mut sys::llavanext_log_callback,
        log_ud: &mut *mut c_void,
    ) {
        if let Some(b) = opt {
            let cbs = b.get();
            if lock(&cbs.progress).is_some() {
                *progress = Some(progress_trampoline);
                *progress_ud = b.0 as *mut c_void;
            }
            if cbs.log.is_some() {
                *log = Some(log_trampoline);
                *log_ud = b.0 as *mut c_void;
            }
        }
    }
}

impl Drop for CallbackBox {
    fn drop(&mut self) {
        unsafe { drop(Box::from_raw(self.0)) }
    }
}

/// After a C call that may have run callbacks: resumes a caught panic, else maps the status.
fn finish(cbs: &Option<CallbackBox>, st: i32) -> Result<i32> {
    finish_on(cbs, check(st))
}

/// `finish` for a call on a handle, with the handle's own error message.
fn finish_on_handle(
    cbs: &Option<CallbackBox>,
    st: i32,
    read: impl Fn(*mut c_char, usize) -> usize,
) -> Result<i32> {
    finish_on(cbs, check_on(st, read))
}

fn finish_on(cbs: &Option<CallbackBox>, result: Result<i32>) -> Result<i32> {
    if let Some(b) = cbs {
        if let Some(payload) = lock(&b.get().panic).take() {
            resume_unwind(payload);
        }
    }
    result
}

static DEFAULT_LOG: Mutex<Option<&'static CallbackBox>> = Mutex::new(None);

/// Sets the process-wide default log callback (used by handles whose options give none);
/// `None` silences the library. The previous callback is kept alive (leaked), as another thread
/// may still be running it.
pub fn set_default_log(callback: Option<LogFn>) {
    let mut slot = lock(&DEFAULT_LOG);
    match callback {
        Some(f) => {
            let b: &'static CallbackBox = Box::leak(Box::new(CallbackBox::new(None, Some(f)).unwrap()));
            unsafe { sys::llavanext_set_default_log(Some(log_trampoline), b.0 as *mut c_void) };
            *slot = Some(b);
        }
        None => {
            unsafe { sys::llavanext_set_default_log(None, ptr::null_mut()) };
            *slot = None;
        }
    }
}

// ---- model --------------------------------------------------------------------------------------

struct ModelInner {
    ptr: NonNull<sys::llavanext_model>,
    _callbacks: Option<CallbackBox>,
}

// The C model is immutable after load and safe to use from many threads at once.
unsafe impl Send for ModelInner {}
unsafe impl Sync for ModelInner {}

impl Drop for ModelInner {
    fn drop(&mut self) {
        unsafe { sys::llavanext_model_free(self.ptr.as_ptr()) }
    }
}

/// A loaded checkpoint (`llavanext_model`). Cheap to clone (reference counted), `Send` and
/// `Sync`. Encoders, poolers and generators keep it alive.
#[derive(Clone)]
pub struct Model {
    inner: Arc<ModelInner>,
}

/// Options of [`Model::load_with`].
#[derive(Default)]
pub struct ModelOptions {
    pub load_mode: LoadMode,
    /// Scan every weight for NaN/Inf.
    pub check_finite: bool,
    /// Compute precision of every encoder and generator of the model; `None`: the library's
    /// default (F32).
    pub precision: Option<Precision>,
    progress: Option<ProgressFn>,
    log: Option<LogFn>,
}

impl ModelOptions {
    pub fn load_mode(mut self, mode: LoadMode) -> Self {
        self.load_mode = mode;
        self
    }

    /// `progress(stage, done, total)` during the load; return `false` to abort.
    pub fn progress(mut self, f: impl FnMut(Stage, i64, i64) -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Receives the model's log messages (possibly from several threads).
    pub fn log(mut self, f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        self.log = Some(Box::new(f));
        self
    }
}

/// The outcome of [`Model::plan_budget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub tokens_per_frame: i32,
    pub visual_tokens: i64,
    pub total_tokens: i64,
    pub rope_scale: f64,
    pub context_length: i64,
    pub fits: bool,
    pub suggested_frames: i32,
    pub suggested_pool_stride: i32,
}

impl Model {
    /// The message of the most recent failed call on this handle (empty if none), whichever
    /// thread made it (`llavanext_model_last_error`).
    pub fn last_error(&self) -> String {
        read_error(self.errors())
    }

    fn errors(&self) -> impl Fn(*mut c_char, usize) -> usize + '_ {
        move |buf, size| unsafe { sys::llavanext_model_last_error(self.raw(), buf, size) }
    }

    /// Loads a checkpoint directory with default options.
    pub fn load(dir: impl AsRef<Path>) -> Result<Model> {
        Model::load_with(dir, ModelOptions::default())
    }

    /// Loads a checkpoint directory. A panic in the progress callback aborts the load and is
    /// resumed here.
    pub fn load_with(dir: impl AsRef<Path>, options: ModelOptions) -> Result<Model> {
        check_version()?;
        let dir = c_path(dir.as_ref())?;
        let cbs = CallbackBox::new(options.progress, options.log);
        let mut p = sys::llavanext_model_params::default();
        unsafe { sys::llavanext_model_params_init(&mut p, std::mem::size_of_val(&p)) };
        p.load_mode = match options.load_mode {
            LoadMode::Mmap => sys::LLAVANEXT_LOAD_MMAP,
            LoadMode::Read => sys::LLAVANEXT_LOAD_READ,
            LoadMode::NoWeights => sys::LLAVANEXT_LOAD_NO_WEIGHTS,
        } as i32;
        p.check_finite = options.check_finite as i32;
        if let Some(precision) = options.precision {
            p.precision = match precision {
                Precision::Auto => sys::LLAVANEXT_PRECISION_AUTO,
                Precision::F32 => sys::LLAVANEXT_PRECISION_F32,
                Precision::Bf16 => sys::LLAVANEXT_PRECISION_BF16,
            } as i32;
        }
        CallbackBox::install(
            &cbs,
            &mut p.progress,
            &mut p.progress_user_data,
            &mut p.log,
            &mut p.log_user_data,
        );
        let mut out = ptr::null_mut();
        let st = unsafe { sys::llavanext_model_load(&mut out, dir.as_ptr(), &p) };
        finish(&cbs, st)?;
        let ptr = NonNull::new(out)
            .ok_or_else(|| Error::binding(status::E_INTERNAL, "model_load returned NULL"))?;
        Ok(Model { inner: Arc::new(ModelInner { ptr, _callbacks: cbs }) })
    }

    fn raw(&self) -> *mut sys::llavanext_model {
        self.inner.ptr.as_ptr()
    }

    /// Id of a special token, or `None` when the model has none.
    pub fn token_id(&self, which: SpecialToken) -> Option<i32> {
        let w = match which {
            SpecialToken::Bos => sys::LLAVANEXT_TOKEN_BOS,
            SpecialToken::Eos => sys::LLAVANEXT_TOKEN_EOS,
            SpecialToken::Pad => sys::LLAVANEXT_TOKEN_PAD,
            SpecialToken::Unk => sys::LLAVANEXT_TOKEN_UNK,
            SpecialToken::Video => sys::LLAVANEXT_TOKEN_VIDEO,
            SpecialToken::Image => sys::LLAVANEXT_TOKEN_IMAGE,
        } as i32;
        let id = unsafe { sys::llavanext_model_token_id(self.raw(), w) };
        (id >= 0).then_some(id)
    }

    pub fn vocab_size(&self) -> i32 {
        unsafe { sys::llavanext_model_vocab_size(self.raw()) }
    }

    /// Context length in tokens with RoPE factor `rope_scale` (0 = config.json's).
    pub fn context_length(&self, rope_scale: f64) -> i64 {
        unsafe { sys::llavanext_model_context_length(self.raw(), rope_scale) }
    }

    /// Embeddings per video frame with pooling stride `pool_stride` (0 = the config's).
    pub fn tokens_per_frame(&self, pool_stride: i32) -> i32 {
        unsafe { sys::llavanext_model_tokens_per_frame(self.raw(), pool_stride) }
    }

    /// Embeddings an image of the given size turns into; `None` for an invalid size.
    pub fn image_tokens(&self, height: i32, width: i32) -> Option<i64> {
        let n = unsafe { sys::llavanext_model_image_tokens(self.raw(), height, width) };
        (n >= 0).then_some(n)
    }

    /// A JSON description of the model.
    pub fn describe(&self) -> Result<String> {
        let mut out = ptr::null_mut();
        check_on(unsafe { sys::llavanext_model_describe(&mut out, self.raw()) }, self.errors())?;
        Ok(unsafe { take_string(out) })
    }

    /// Token ids of `text`.
    pub fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<i32>> {
        self.tokenize_bytes(text.as_bytes(), add_bos)
    }

    /// Token ids of UTF-8 bytes (invalid UTF-8 is an error naming the offset).
    pub fn tokenize_bytes(&self, text: &[u8], add_bos: bool) -> Result<Vec<i32>> {
        let mut ids = ptr::null_mut();
        let mut count = 0usize;
        check_on(
            unsafe {
                sys::llavanext_model_tokenize(
                    &mut ids,
                    &mut count,
                    self.raw(),
                    text.as_ptr() as *const c_char,
                    text.len(),
                    add_bos as i32,
                )
            },
            self.errors(),
        )?;
        let v = if count == 0 || ids.is_null() {
            Vec::new()
        } else {
            unsafe { std::slice::from_raw_parts(ids, count) }.to_vec()
        };
        unsafe { sys::llavanext_free(ids as *mut c_void) };
        Ok(v)
    }

    /// Text of token ids, as the Hugging Face tokenizer's decode() gives it.
    pub fn detokenize(&self, ids: &[i32], skip_special: bool) -> Result<String> {
        let mut out = ptr::null_mut();
        check_on(
            unsafe {
                sys::llavanext_model_detokenize(
                    &mut out,
                    self.raw(),
                    ids.as_ptr(),
                    ids.len(),
                    skip_special as i32,
                )
            },
            self.errors(),
        )?;
        Ok(unsafe { take_string(out) })
    }

    /// Renders a conversation (Hugging Face messages as a JSON array) with the checkpoint's
    /// chat template.
    pub fn render_chat(&self, messages_json: &str, add_generation_prompt: bool) -> Result<String> {
        let m = c_string(messages_json)?;
        let mut out = ptr::null_mut();
        check_on(
            unsafe {
                sys::llavanext_model_render_chat(
                    &mut out,
                    self.raw(),
                    m.as_ptr(),
                    add_generation_prompt as i32,
                )
            },
            self.errors(),
        )?;
        Ok(unsafe { take_string(out) })
    }

    /// Plans a request against the context (see llavanext_model_plan_budget): rope_scale 0 =
    /// config.json's, < 0 = "auto"; context_limit > 0 caps the context.
    #[allow(clippy::too_many_arguments)]
    pub fn plan_budget(
        &self,
        frames: i32,
        pool_stride: i32,
        image_tokens: i64,
        text_tokens: i64,
        max_new_tokens: i32,
        rope_scale: f64,
        context_limit: i64,
    ) -> Result<Budget> {
        let mut b = sys::llavanext_budget {
            struct_size: std::mem::size_of::<sys::llavanext_budget>() as u32,
            ..Default::default()
        };
        check_on(
            unsafe {
                sys::llavanext_model_plan_budget(
                    &mut b,
                    self.raw(),
                    frames,
                    pool_stride,
                    image_tokens,
                    text_tokens,
                    max_new_tokens,
                    rope_scale,
                    context_limit,
                )
            },
            self.errors(),
        )?;
        Ok(Budget {
            tokens_per_frame: b.tokens_per_frame,
            visual_tokens: b.visual_tokens,
            total_tokens: b.total_tokens,
            rope_scale: b.rope_scale,
            context_length: b.context_length,
            fits: b.fits != 0,
            suggested_frames: b.suggested_frames,
            suggested_pool_stride: b.suggested_pool_stride,
        })
    }
}

// ---- frames and tensors -------------------------------------------------------------------------

/// A batch of RGB24 frames of one size (`llavanext_frames`).
pub struct Frames {
    ptr: NonNull<sys::llavanext_frames>,
}

unsafe impl Send for Frames {}

impl Drop for Frames {
    fn drop(&mut self) {
        unsafe { sys::llavanext_frames_free(self.ptr.as_ptr()) }
    }
}

impl Frames {
    fn from_out(out: *mut sys::llavanext_frames) -> Result<Frames> {
        NonNull::new(out)
            .map(|ptr| Frames { ptr })
            .ok_or_else(|| Error::binding(status::E_INTERNAL, "NULL frames"))
    }

    /// One frame copied from `height` rows of `width * 3` RGB bytes.
    pub fn from_rgb(pixels: &[u8], width: i32, height: i32) -> Result<Frames> {
        if width <= 0 || height <= 0 || pixels.len() < width as usize * height as usize * 3 {
            return Err(Error::binding(
                status::E_INVALID_ARGUMENT,
                "pixel buffer smaller than width x height x 3",
            ));
        }
        let planes = [pixels.as_ptr(), ptr::null(), ptr::null()];
        let strides = [width * 3, 0, 0];
        let mut out = ptr::null_mut();
        check(unsafe {
            sys::llavanext_frames_from_host(
                &mut out,
                sys::LLAVANEXT_PIXEL_RGB24 as i32,
                planes.as_ptr(),
                strides.as_ptr(),
                width,
                height,
            )
        })?;
        Frames::from_out(out)
    }

    pub fn count(&self) -> i32 {
        unsafe { sys::llavanext_frames_count(self.ptr.as_ptr()) }
    }

    pub fn width(&self) -> i32 {
        unsafe { sys::llavanext_frames_width(self.ptr.as_ptr()) }
    }

    pub fn height(&self) -> i32 {
        unsafe { sys::llavanext_frames_height(self.ptr.as_ptr()) }
    }

    /// All frames' pixels (count x height x width x 3 bytes), borrowed without a copy.
    pub fn data(&self) -> &[u8] {
        let n = self.count() as usize * self.height() as usize * self.width() as usize * 3;
        let p = unsafe { sys::llavanext_frames_data(self.ptr.as_ptr(), 0) };
        if n == 0 || p.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(p, n) }
        }
    }

    /// The pixels of frame `index` (height x width x 3 bytes), borrowed.
    pub fn frame(&self, index: i32) -> Option<&[u8]> {
        let n = self.height() as usize * self.width() as usize * 3;
        let p = unsafe { sys::llavanext_frames_data(self.ptr.as_ptr(), index) };
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, n) })
    }

    /// Index of the frame in the source's decode order.
    pub fn source_index(&self, index: i32) -> Option<i64> {
        let v = unsafe { sys::llavanext_frames_source_index(self.ptr.as_ptr(), index) };
        (v >= 0).then_some(v)
    }

    /// Presentation time in seconds.
    pub fn timestamp(&self, index: i32) -> Option<f64> {
        let v = unsafe { sys::llavanext_frames_timestamp(self.ptr.as_ptr(), index) };
        (!v.is_nan()).then_some(v)
    }
}

/// A float32 array with a shape and a kind (`llavanext_tensor`).
pub struct Tensor {
    ptr: NonNull<sys::llavanext_tensor>,
}

unsafe impl Send for Tensor {}

impl Drop for Tensor {
    fn drop(&mut self) {
        unsafe { sys::llavanext_tensor_free(self.ptr.as_ptr()) }
    }
}

impl Tensor {
    fn from_out(out: *mut sys::llavanext_tensor) -> Result<Tensor> {
        NonNull::new(out)
            .map(|ptr| Tensor { ptr })
            .ok_or_else(|| Error::binding(status::E_INTERNAL, "NULL tensor"))
    }

    /// A new tensor holding a copy of `data` with shape `dims` (image size 0 x 0).
    pub fn new(kind: TensorKind, dims: &[i64], data: &[f32]) -> Result<Tensor> {
        Tensor::new_image(kind, dims, data, 0, 0)
    }

    /// As [`Tensor::new`] with the original image size (for image kinds).
    pub fn new_image(
        kind: TensorKind,
        dims: &[i64],
        data: &[f32],
        image_height: i32,
        image_width: i32,
    ) -> Result<Tensor> {
        let numel: i64 = dims.iter().product();
        if numel < 0 || numel as usize != data.len() {
            return Err(Error::binding(status::E_INVALID_ARGUMENT, "data length does not match the shape"));
        }
        let mut out = ptr::null_mut();
        check(unsafe {
            sys::llavanext_tensor_create(
                &mut out,
                kind.to_raw(),
                dims.len() as i32,
                dims.as_ptr(),
                data.as_ptr(),
                image_height,
                image_width,
            )
        })?;
        Tensor::from_out(out)
    }

    /// Concatenates tensors of one kind along their first dimension (e.g. the embeddings of
    /// frame batches encoded one after another).
    pub fn concat(tensors: &[&Tensor]) -> Result<Tensor> {
        let ptrs: Vec<*const sys::llavanext_tensor> =
            tensors.iter().map(|t| t.ptr.as_ptr() as *const _).collect();
        let mut out = ptr::null_mut();
        check(unsafe { sys::llavanext_tensor_concat(&mut out, ptrs.as_ptr(), ptrs.len() as i32) })?;
        Tensor::from_out(out)
    }

    pub fn kind(&self) -> TensorKind {
        TensorKind::from_raw(unsafe { sys::llavanext_tensor_kind(self.ptr.as_ptr()) })
    }

    pub fn shape(&self) -> Vec<i64> {
        let nd = unsafe { sys::llavanext_tensor_ndim(self.ptr.as_ptr()) };
        (0..nd).map(|d| unsafe { sys::llavanext_tensor_dim(self.ptr.as_ptr(), d) }).collect()
    }

    pub fn numel(&self) -> i64 {
        unsafe { sys::llavanext_tensor_numel(self.ptr.as_ptr()) }
    }

    /// The values, row-major, borrowed without a copy.
    pub fn data(&self) -> &[f32] {
        let n = self.numel() as usize;
        let p = unsafe { sys::llavanext_tensor_data(self.ptr.as_ptr()) };
        if n == 0 || p.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(p, n) }
        }
    }

    /// (height, width) of the original image for image kinds, (0, 0) otherwise.
    pub fn image_size(&self) -> (i32, i32) {
        unsafe {
            (
                sys::llavanext_tensor_image_height(self.ptr.as_ptr()),
                sys::llavanext_tensor_image_width(self.ptr.as_ptr()),
            )
        }
    }
}

// ---- frame sampler ------------------------------------------------------------------------------

/// Options of [`FrameSampler::open_with`]; `None` keeps the library default.
#[derive(Clone, Debug, Default)]
pub struct FrameSamplerOptions {
    pub threads: Option<i32>,
    pub apply_rotation: Option<bool>,
    pub skip_corrupt: Option<bool>,
    pub max_frame_pixels: Option<i64>,
}

impl FrameSamplerOptions {
    fn params(&self) -> sys::llavanext_frame_sampler_params {
        let mut p = sys::llavanext_frame_sampler_params::default();
        unsafe { sys::llavanext_frame_sampler_params_init(&mut p, std::mem::size_of_val(&p)) };
        if let Some(v) = self.threads {
            p.threads = v;
        }
        if let Some(v) = self.apply_rotation {
            p.apply_rotation = v as i32;
        }
        if let Some(v) = self.skip_corrupt {
            p.skip_corrupt = v as i32;
        }
        if let Some(v) = self.max_frame_pixels {
            p.max_frame_pixels = v;
        }
        p
    }
}

/// What a media source is.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaInfo {
    pub width: i32,
    pub height: i32,
    pub rotation: i32,
    pub is_image: bool,
    pub frame_count_exact: bool,
    pub frame_count: i64,
    pub duration: f64,
    pub fps: f64,
    pub container: String,
    pub codec: String,
}

/// An opened video or image (`llavanext_frame_sampler`).
pub struct FrameSampler {
    ptr: NonNull<sys::llavanext_frame_sampler>,
}

unsafe impl Send for FrameSampler {}

impl Drop for FrameSampler {
    fn drop(&mut self) {
        unsafe { sys::llavanext_frame_sampler_free(self.ptr.as_ptr()) }
    }
}

fn char_array(a: &[c_char]) -> String {
    let bytes: Vec<u8> = a.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl FrameSampler {
    /// The message of the most recent failed call on this handle (empty if none), whichever
    /// thread made it (`llavanext_frame_sampler_last_error`).
    pub fn last_error(&self) -> String {
        read_error(self.errors())
    }

    fn errors(&self) -> impl Fn(*mut c_char, usize) -> usize + '_ {
        move |buf, size| unsafe { sys::llavanext_frame_sampler_last_error(self.ptr.as_ptr(), buf, size) }
    }

    pub fn open(path: impl AsRef<Path>) -> Result<FrameSampler> {
        FrameSampler::open_with(path, &FrameSamplerOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: &FrameSamplerOptions) -> Result<FrameSampler> {
        let path = c_path(path.as_ref())?;
        let p = options.params();
        let mut out = ptr::null_mut();
        check(unsafe { sys::llavanext_frame_sampler_open(&mut out, path.as_ptr(), &p) })?;
        FrameSampler::from_out(out)
    }

    /// Opens media held in memory (copied).
    pub fn from_memory(data: &[u8], options: &FrameSamplerOptions) -> Result<FrameSampler> {
        let p = options.params();
        let mut out = ptr::null_mut();
        check(unsafe {
            sys::llavanext_frame_sampler_open_memory(&mut out, data.as_ptr() as *const c_void, data.len(), &p)
        })?;
        FrameSampler::from_out(out)
    }

    fn from_out(out: *mut sys::llavanext_frame_sampler) -> Result<FrameSampler> {
        NonNull::new(out)
            .map(|ptr| FrameSampler { ptr })
            .ok_or_else(|| Error::binding(status::E_INTERNAL, "NULL sampler"))
    }

    pub fn info(&self) -> Result<MediaInfo> {
        let mut i = sys::llavanext_media_info {
            struct_size: std::mem::size_of::<sys::llavanext_media_info>() as u32,
            ..Default::default()
        };
        check_on(unsafe { sys::llavanext_frame_sampler_info(&mut i, self.ptr.as_ptr()) }, self.errors())?;
        Ok(MediaInfo {
            width: i.width,
            height: i.height,
            rotation: i.rotation,
            is_image: i.is_image != 0,
            frame_count_exact: i.frame_count_exact != 0,
            frame_count: i.frame_count,
            duration: i.duration,
            fps: i.fps,
            container: char_array(&i.container),
            codec: char_array(&i.codec),
        })
    }

    /// `count` frames spread uniformly (frame k is index floor(k * frame_count / count)).
    pub fn uniform(&mut self, count: i32) -> Result<Frames> {
        let mut out = ptr::null_mut();
        check_on(
            unsafe { sys::llavanext_frame_sampler_uniform(&mut out, self.ptr.as_ptr(), count) },
            self.errors(),
        )?;
        Frames::from_out(out)
    }

    /// Frames at `fps` per second, at most `max_count`.
    pub fn by_fps(&mut self, fps: f64, max_count: i32) -> Result<Frames> {
        let mut out = ptr::null_mut();
        check_on(
            unsafe { sys::llavanext_frame_sampler_by_fps(&mut out, self.ptr.as_ptr(), fps, max_count) },
            self.errors(),
        )?;
        Frames::from_out(out)
    }

    /// The frames showing at the given times in seconds.
    pub fn at_times(&mut self, times: &[f64]) -> Result<Frames> {
        let mut out = ptr::null_mut();
        check_on(
            unsafe {
                sys::llavanext_frame_sampler_at_times(
                    &mut out,
                    self.ptr.as_ptr(),
                    times.as_ptr(),
                    times.len() as i32,
                )
            },
            self.errors(),
        )?;
        Frames::from_out(out)
    }

    /// The frames with the given 0-based indices (ascending).
    pub fn at_indices(&mut self, indices: &[i64]) -> Result<Frames> {
        let mut out = ptr::null_mut();
        check_on(
            unsafe {
                sys::llavanext_frame_sampler_at_indices(
                    &mut out,
                    self.ptr.as_ptr(),
                    indices.as_ptr(),
                    indices.len() as i32,
                )
            },
            self.errors(),
        )?;
        Frames::from_out(out)
    }

    /// `count` uniformly spread frames in batches of at most `max_batch`, never all at once.
    pub fn uniform_batches(&mut self, count: i32, max_batch: i32) -> Result<FrameBatches<'_>> {
        check_on(
            unsafe { sys::llavanext_frame_sampler_begin_uniform(self.ptr.as_ptr(), count) },
            self.errors(),
        )?;
        Ok(FrameBatches { sampler: self, max_batch, done: false })
    }
}

/// Iterator of [`FrameSampler::uniform_batches`].
pub struct FrameBatches<'a> {
    sampler: &'a mut FrameSampler,
    max_batch: i32,
    done: bool,
}

impl Iterator for FrameBatches<'_> {
    type Item = Result<Frames>;

    fn next(&mut self) -> Option<Result<Frames>> {
        if self.done {
            return None;
        }
        let mut out = ptr::null_mut();
        let st =
            unsafe { sys::llavanext_frame_sampler_next(&mut out, self.sampler.ptr.as_ptr(), self.max_batch) };
        match check_on(st, self.sampler.errors()) {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(s) if s == status::DONE => {
                self.done = true;
                None
            }
            Ok(_) => Some(Frames::from_out(out)),
        }
    }
}

// ---- cancellation -------------------------------------------------------------------------------

/// Cancels a running operation of an encoder or generator from another thread. Holding one
/// after the handle was dropped is harmless: cancel() then does nothing.
#[derive(Clone)]
pub struct CancelHandle {
    slot: Arc<Mutex<Option<(usize, unsafe extern "C" fn(usize))>>>,
}

impl CancelHandle {
    fn new(ptr: usize, f: unsafe extern "C" fn(usize)) -> CancelHandle {
        CancelHandle { slot: Arc::new(Mutex::new(Some((ptr, f)))) }
    }

    pub fn cancel(&self) {
        if let Some((p, f)) = *lock(&self.slot) {
            unsafe { f(p) }
        }
    }

    fn clear(&self) {
        *lock(&self.slot) = None;
    }
}

unsafe extern "C" fn cancel_encoder(p: usize) {
    sys::llavanext_vision_encoder_cancel(p as *mut sys::llavanext_vision_encoder)
}

unsafe extern "C" fn cancel_generator(p: usize) {
    sys::llavanext_generator_cancel(p as *mut sys::llavanext_generator)
}

// ---- vision encoder -----------------------------------------------------------------------------

/// Options of [`VisionEncoder::with_options`].
#[derive(Default)]
pub struct VisionEncoderOptions {
    /// 0 = one per CPU.
    pub threads: i32,
    /// Frames per GEMM batch; 0 = 8.
    pub max_batch_frames: i32,
    /// Cap on the memory one call may allocate; 0 = the library's default (8 GiB).
    pub max_request_bytes: i64,
    progress: Option<ProgressFn>,
    log: Option<LogFn>,
}

impl VisionEncoderOptions {
    pub fn threads(mut self, n: i32) -> Self {
        self.threads = n;
        self
    }

    /// `progress(Stage::Encode, done, total)`; return `false` to abort.
    pub fn progress(mut self, f: impl FnMut(Stage, i64, i64) -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    pub fn log(mut self, f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        self.log = Some(Box::new(f));
        self
    }
}

/// The vision tower (`llavanext_vision_encoder`).
pub struct VisionEncoder {
    ptr: NonNull<sys::llavanext_vision_encoder>,
    cancel: CancelHandle,
    callbacks: Option<CallbackBox>,
    _model: Model,
}

unsafe impl Send for VisionEncoder {}

impl Drop for VisionEncoder {
    fn drop(&mut self) {
        self.cancel.clear();
        unsafe { sys::llavanext_vision_encoder_free(self.ptr.as_ptr()) }
    }
}

impl VisionEncoder {
    /// The message of the most recent failed call on this handle (empty if none), whichever
    /// thread made it (`llavanext_vision_encoder_last_error`).
    pub fn last_error(&self) -> String {
        read_error(self.errors())
    }

    fn errors(&self) -> impl Fn(*mut c_char, usize) -> usize + '_ {
        move |buf, size| unsafe { sys::llavanext_vision_encoder_last_error(self.ptr.as_ptr(), buf, size) }
    }

    pub fn new(model: &Model) -> Result<VisionEncoder> {
        VisionEncoder::with_options(model, VisionEncoderOptions::default())
    }

    pub fn with_options(model: &Model, options: VisionEncoderOptions) -> Result<VisionEncoder> {
        let cbs = CallbackBox::new(options.progress, options.log);
        let mut p = sys::llavanext_vision_encoder_params::default();
        unsafe { sys::llavanext_vision_encoder_params_init(&mut p, std::mem::size_of_val(&p)) };
        p.threads = options.threads;
        p.max_batch_frames = options.max_batch_frames;
        p.max_request_bytes = options.max_request_bytes;
        CallbackBox::install(
            &cbs,
            &mut p.progress,
            &mut p.progress_user_data,
            &mut p.log,
            &mut p.log_user_data,
        );
        let mut out = ptr::null_mut();
        check(unsafe { sys::llavanext_vision_encoder_create(&mut out, model.raw(), &p) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::binding(status::E_INTERNAL, "NULL encoder"))?;
        Ok(VisionEncoder {
            ptr,
            cancel: CancelHandle::new(out as usize, cancel_encoder),
            callbacks: cbs,
            _model: model.clone(),
        })
    }

    fn tensor(&mut self, st: i32, out: *mut sys::llavanext_tensor) -> Result<Tensor> {
        finish_on_handle(&self.callbacks, st, self.errors())?;
        Tensor::from_out(out)
    }

    /// Frames → VIDEO_FEATURES.
    pub fn encode_video(&mut self, frames: &Frames) -> Result<Tensor> {
        let mut out = ptr::null_mut();
        let st = unsafe {
            sys::llavanext_vision_encoder_encode_video(&mut out, self.ptr.as_ptr(), frames.ptr.as_ptr())
        };
        self.tensor(st, out)
    }

    /// Frame `index` as an image → IMAGE_FEATURES.
    pub fn encode_image(&mut self, frames: &Frames, index: i32) -> Result<Tensor> {
        let mut out = ptr::null_mut();
        let st = unsafe {
            sys::llavanext_vision_encoder_encode_image(
                &mut out,
                self.ptr.as_ptr(),
                frames.ptr.as_ptr(),
                index,
            )
        };
        self.tensor(st, out)
    }

    /// Frames → VIDEO_PIXELS.
    pub fn preprocess_video(&mut self, frames: &Frames) -> Result<Tensor> {
        let mut out = ptr::null_mut();
        let st = unsafe {
            sys::llavanext_vision_encoder_preprocess_video(&mut out, self.ptr.as_ptr(), frames.ptr.as_ptr())
        };
        self.tensor(st, out)
    }

    /// Frame `index` → IMAGE_PIXELS.
    pub fn preprocess_image(&mut self, frames: &Frames, index: i32) -> Result<Tensor> {
        let mut out = ptr::null_mut();
        let st = unsafe {
            sys::llavanext_vision_encoder_preprocess_image(
                &mut out,
                self.ptr.as_ptr(),
                frames.ptr.as_ptr(),
                index,
            )
        };
        self.tensor(st, out)
    }

    /// VIDEO_PIXELS / IMAGE_PIXELS → features.
    pub fn encode_pixels(&mut self, pixels: &Tensor) -> Result<Tensor> {
        let mut out = ptr::null_mut();
        let st = unsafe {
            sys::llavanext_vision_encoder_encode_pixels(&mut out, self.ptr.as_ptr(), pixels.ptr.as_ptr())
        };
        self.tensor(st, out)
    }

    /// A handle that can stop a running encode from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }
}

// ---- pooler -------------------------------------------------------------------------------------

/// Options of [`Pooler::with_options`].
#[derive(Clone, Debug, Default)]
pub struct PoolerOptions {
    pub threads: i32,
    /// 0 = config's; 1 = no pooling.
    pub pool_stride: i32,
    pub pool_mode: PoolMode,
}

/// Spatial pooling + projector (`llavanext_pooler`).
pub struct Pooler {
    ptr: NonNull<sys::llavanext_pooler>,
    _model: Model,
}

unsafe impl Send for Pooler {}

impl Drop for Pooler {
    fn drop(&mut self) {
        unsafe { sys::llavanext_pooler_free(self.ptr.as_ptr()) }
    }
}

impl Pooler {
    /// The message of the most recent failed call on this handle (empty if none), whichever
    /// thread made it (`llavanext_pooler_last_error`).
    pub fn last_error(&self) -> String {
        read_error(self.errors())
    }

    fn errors(&self) -> impl Fn(*mut c_char, usize) -> usize + '_ {
        move |buf, size| unsafe { sys::llavanext_pooler_last_error(self.ptr.as_ptr(), buf, size) }
    }

    pub fn new(model: &Model) -> Result<Pooler> {
        Pooler::with_options(model, &PoolerOptions::default())
    }

    pub fn with_options(model: &Model, options: &PoolerOptions) -> Result<Pooler> {
        let mut p = sys::llavanext_pooler_params::default();
        unsafe { sys::llavanext_pooler_params_init(&mut p, std::mem::size_of_val(&p)) };
        p.threads = options.threads;
        p.pool_stride = options.pool_stride;
        p.pool_mode = match options.pool_mode {
            PoolMode::Default => sys::LLAVANEXT_POOL_DEFAULT,
            PoolMode::Average => sys::LLAVANEXT_POOL_AVERAGE,
            PoolMode::Max => sys::LLAVANEXT_POOL_MAX,
        };
        let mut out = ptr::null_mut();
        check(unsafe { sys::llavanext_pooler_create(&mut out, model.raw(), &p) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::binding(status::E_INTERNAL, "NULL pooler"))?;
        Ok(Pooler { ptr, _model: model.clone() })
    }

    pub fn tokens_per_frame(&self) -> i32 {
        unsafe { sys::llavanext_pooler_tokens_per_frame(self.ptr.as_ptr()) }
    }

    fn run(
        &mut self,
        f: unsafe extern "C" fn(
            *mut *mut sys::llavanext_tensor,
            *mut sys::llavanext_pooler,
            *const sys::llavanext_tensor,
        ) -> i32,
        input: &Tensor,
    ) -> Result<Tensor> {
        let mut out = ptr::null_mut();
        check_on(unsafe { f(&mut out, self.ptr.as_ptr(), input.ptr.as_ptr()) }, self.errors())?;
        Tensor::from_out(out)
    }

    /// VIDEO_FEATURES → VIDEO_EMBEDDINGS, IMAGE_FEATURES → IMAGE_EMBEDDINGS.
    pub fn apply(&mut self, features: &Tensor) -> Result<Tensor> {
        self.run(sys::llavanext_pooler_apply, features)
    }

    /// VIDEO_FEATURES → VIDEO_POOLED.
    pub fn pool(&mut self, features: &Tensor) -> Result<Tensor> {
        self.run(sys::llavanext_pooler_pool, features)
    }

    /// VIDEO_POOLED → VIDEO_EMBEDDINGS, IMAGE_FEATURES → IMAGE_PROJECTED.
    pub fn project(&mut self, features: &Tensor) -> Result<Tensor> {
        self.run(sys::llavanext_pooler_project, features)
    }

    /// IMAGE_PROJECTED → IMAGE_EMBEDDINGS.
    pub fn pack_image(&mut self, projected: &Tensor) -> Result<Tensor> {
        self.run(sys::llavanext_pooler_pack_image, projected)
    }
}

// ---- generator ----------------------------------------------------------------------------------

/// Options of [`Generator::with_options`]; `None` keeps the library's default (see
/// llavanext.h: e.g. temperature -1 = generation_config.json's).
#[derive(Default)]
pub struct GeneratorOptions {
    pub threads: Option<i32>,
    pub context_length: Option<i64>,
    pub rope_scale: Option<f64>,
    pub max_new_tokens: Option<i32>,
    pub temperature: Option<f32>,
    pub top_k: Option<i32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub seed: Option<u64>,
    pub prefill_chunk: Option<i32>,
    /// Cap on the generator's memory, checked at creation; 0 = no cap.
    pub max_request_bytes: Option<i64>,
    progress: Option<ProgressFn>,
    log: Option<LogFn>,
}

impl GeneratorOptions {
    /// Greedy decoding (temperature 0).
    pub fn greedy() -> Self {
        GeneratorOptions { temperature: Some(0.0), ..Default::default() }
    }

    pub fn max_new_tokens(mut self, n: i32) -> Self {
        self.max_new_tokens = Some(n);
        self
    }

    pub fn threads(mut self, n: i32) -> Self {
        self.threads = Some(n);
        self
    }

    /// `progress(stage, done, total)` for Prefill and Generate; return `false` to abort.
    pub fn progress(mut self, f: impl FnMut(Stage, i64, i64) -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    pub fn log(mut self, f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        self.log = Some(Box::new(f));
        self
    }
}

/// One generated token: the text it completes (whole UTF-8 characters, possibly empty) and its
/// id (-1 for the final flush of pending text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub piece: String,
    pub id: i32,
}

/// One conversation with the language model (`llavanext_generator`).
pub struct Generator {
    ptr: NonNull<sys::llavanext_generator>,
    cancel: CancelHandle,
    callbacks: Option<CallbackBox>,
    done: bool,
    _model: Model,
}

unsafe impl Send for Generator {}

impl Drop for Generator {
    fn drop(&mut self) {
        self.cancel.clear();
        unsafe { sys::llavanext_generator_free(self.ptr.as_ptr()) }
    }
}

struct TokenState<'a> {
    f: &'a mut dyn FnMut(&str, i32) -> bool,
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn token_trampoline(
    piece: *const c_char,
    len: usize,
    token: i32,
    user_data: *mut c_void,
) -> i32 {
    let state = &mut *(user_data as *mut TokenState);
    if state.panic.is_some() {
        return 1;
    }
    let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(piece as *const u8, len) };
    let text = String::from_utf8_lossy(bytes);
    match catch_unwind(AssertUnwindSafe(|| (state.f)(&text, token))) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(p) => {
            state.panic = Some(p);
            1
        }
    }
}

impl Generator {
    /// The message of the most recent failed call on this handle (empty if none), whichever
    /// thread made it (`llavanext_generator_last_error`).
    pub fn last_error(&self) -> String {
        read_error(self.errors())
    }

    fn errors(&self) -> impl Fn(*mut c_char, usize) -> usize + '_ {
        move |buf, size| unsafe { sys::llavanext_generator_last_error(self.ptr.as_ptr(), buf, size) }
    }

    pub fn new(model: &Model) -> Result<Generator> {
        Generator::with_options(model, GeneratorOptions::default())
    }

    pub fn with_options(model: &Model, o: GeneratorOptions) -> Result<Generator> {
        let cbs = CallbackBox::new(o.progress, o.log);
        let mut p = sys::llavanext_generator_params::default();
        unsafe { sys::llavanext_generator_params_init(&mut p, std::mem::size_of_val(&p)) };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { p.$f = v; } )* };
        }
        set!(
            threads,
            context_length,
            rope_scale,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            seed,
            prefill_chunk,
            max_request_bytes
        );
        CallbackBox::install(
            &cbs,
            &mut p.progress,
            &mut p.progress_user_data,
            &mut p.log,
            &mut p.log_user_data,
        );
        let mut out = ptr::null_mut();
        check(unsafe { sys::llavanext_generator_create(&mut out, model.raw(), &p) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::binding(status::E_INTERNAL, "NULL generator"))?;
        Ok(Generator {
            ptr,
            cancel: CancelHandle::new(out as usize, cancel_generator),
            callbacks: cbs,
            done: false,
            _model: model.clone(),
        })
    }

    /// Appends prompt text; every `<video>`/`<image>` placeholder takes the next of `media`.
    pub fn append_prompt(&mut self, text: &str, media: &[&Tensor]) -> Result<()> {
        let ptrs: Vec<*const sys::llavanext_tensor> =
            media.iter().map(|t| t.ptr.as_ptr() as *const _).collect();
        check_on(
            unsafe {
                sys::llavanext_generator_append_prompt(
                    self.ptr.as_ptr(),
                    text.as_ptr() as *const c_char,
                    text.len(),
                    ptrs.as_ptr(),
                    ptrs.len() as i32,
                )
            },
            self.errors(),
        )?;
        self.done = false;
        Ok(())
    }

    /// Appends token ids as they are.
    pub fn append_tokens(&mut self, ids: &[i32]) -> Result<()> {
        check_on(
            unsafe { sys::llavanext_generator_append_tokens(self.ptr.as_ptr(), ids.as_ptr(), ids.len()) },
            self.errors(),
        )?;
        self.done = false;
        Ok(())
    }

    /// Evaluates what was appended (done implicitly by the generating calls).
    pub fn prefill(&mut self) -> Result<()> {
        let st = unsafe { sys::llavanext_generator_prefill(self.ptr.as_ptr()) };
        finish_on_handle(&self.callbacks, st, self.errors()).map(|_| ())
    }

    /// Generates one token. `Ok(None)` once generation has stopped (EOS, a stop string,
    /// max_new_tokens); text still pending at the stop comes first as a token with id -1.
    pub fn next_token(&mut self) -> Result<Option<Token>> {
        if self.done {
            return Ok(None);
        }
        let mut piece: *const c_char = ptr::null();
        let mut len = 0usize;
        let mut id = -1i32;
        let st = unsafe { sys::llavanext_generator_next(self.ptr.as_ptr(), &mut piece, &mut len, &mut id) };
        let st = finish_on_handle(&self.callbacks, st, self.errors())?;
        let text = if len == 0 || piece.is_null() {
            String::new()
        } else {
            let bytes = unsafe { std::slice::from_raw_parts(piece as *const u8, len) };
            String::from_utf8_lossy(bytes).into_owned()
        };
        if st == status::DONE {
            self.done = true;
            return Ok((!text.is_empty()).then_some(Token { piece: text, id: -1 }));
        }
        Ok(Some(Token { piece: text, id }))
    }

    /// Iterator of generated tokens (each `Result<Token>`), ending when generation stops.
    pub fn tokens(&mut self) -> Tokens<'_> {
        Tokens { generator: self, failed: false }
    }

    /// Iterator of the non-empty text pieces of the answer.
    pub fn pieces(&mut self) -> impl Iterator<Item = Result<String>> + '_ {
        self.tokens().filter_map(|t| match t {
            Ok(t) if t.piece.is_empty() => None,
            Ok(t) => Some(Ok(t.piece)),
            Err(e) => Some(Err(e)),
        })
    }

    /// Generates to the end and returns the whole answer.
    pub fn generate_text(&mut self) -> Result<String> {
        self.pieces().collect()
    }

    /// Push helper: `callback(piece, token_id)` for every piece; return `false` to stop. A panic
    /// in the callback stops generation and is resumed when the C call has returned.
    pub fn generate(&mut self, mut callback: impl FnMut(&str, i32) -> bool) -> Result<()> {
        let mut state = TokenState { f: &mut callback, panic: None };
        let st = unsafe {
            sys::llavanext_generator_generate(
                self.ptr.as_ptr(),
                Some(token_trampoline),
                &mut state as *mut TokenState as *mut c_void,
            )
        };
        let result = finish_on_handle(&self.callbacks, st, self.errors());
        if let Some(p) = state.panic.take() {
            resume_unwind(p);
        }
        result.map(|_| ())
    }

    /// Generation ends when the generated text contains `stop`.
    pub fn add_stop_string(&mut self, stop: &str) -> Result<()> {
        let s = c_string(stop)?;
        check_on(
            unsafe { sys::llavanext_generator_add_stop_string(self.ptr.as_ptr(), s.as_ptr()) },
            self.errors(),
        )
        .map(|_| ())
    }

    /// (sum of natural-log probabilities, number of tokens) of `continuation`.
    pub fn score(&mut self, continuation: &str) -> Result<(f64, i32)> {
        let mut v = 0f64;
        let mut n = 0i32;
        let st = unsafe {
            sys::llavanext_generator_score(
                &mut v,
                &mut n,
                self.ptr.as_ptr(),
                continuation.as_ptr() as *const c_char,
                continuation.len(),
            )
        };
        finish_on_handle(&self.callbacks, st, self.errors())?;
        Ok((v, n))
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        unsafe { sys::llavanext_generator_reset(self.ptr.as_ptr()) };
        self.done = false;
    }

    /// Logits of the last evaluated position, borrowed until the next call on the generator.
    pub fn logits(&mut self) -> Result<&[f32]> {
        let mut p: *const f32 = ptr::null();
        let mut n = 0i32;
        check_on(
            unsafe { sys::llavanext_generator_logits(&mut p, &mut n, self.ptr.as_ptr()) },
            self.errors(),
        )?;
        Ok(if p.is_null() || n <= 0 { &[] } else { unsafe { std::slice::from_raw_parts(p, n as usize) } })
    }

    /// Tokens in the conversation so far.
    pub fn position(&self) -> i64 {
        unsafe { sys::llavanext_generator_position(self.ptr.as_ptr()) }
    }

    /// KV cache capacity in tokens.
    pub fn context_length(&self) -> i64 {
        unsafe { sys::llavanext_generator_context_length(self.ptr.as_ptr()) }
    }

    /// The conversation's token ids (placeholder-expanded positions hold the placeholder id).
    pub fn token_ids(&self) -> &[i32] {
        let n = self.position() as usize;
        let p = unsafe { sys::llavanext_generator_tokens(self.ptr.as_ptr()) };
        if n == 0 || p.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(p, n) }
        }
    }

    /// A handle that can stop a running prefill/generation from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }
}

/// Iterator of [`Generator::tokens`].
pub struct Tokens<'a> {
    generator: &'a mut Generator,
    failed: bool,
}

impl Iterator for Tokens<'_> {
    type Item = Result<Token>;

    fn next(&mut self) -> Option<Result<Token>> {
        if self.failed {
            return None;
        }
        match self.generator.next_token() {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    #[test]
    fn thread_markers() {
        assert_send::<Model>();
        assert_sync::<Model>();
        assert_send::<Frames>();
        assert_send::<Tensor>();
        assert_send::<FrameSampler>();
        assert_send::<VisionEncoder>();
        assert_send::<Pooler>();
        assert_send::<Generator>();
        assert_send::<CancelHandle>();
        assert_sync::<CancelHandle>();
    }

    #[test]
    fn version_is_compatible() {
        check_version().unwrap();
        assert_eq!(version_number() / 10000, sys::LLAVANEXT_VERSION_MAJOR as i32);
    }

    #[test]
    fn status_strings() {
        assert!(!status_string(status::E_IO).is_empty());
        assert_eq!(status_string(-12345), "unknown status");
    }
}
