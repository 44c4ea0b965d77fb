import gc
import json
import os
import re
import subprocess
import sys
import threading

import pytest

import llavanext as L

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def video_embeddings(model, video_path, frames, **encoder_kwargs):
    with L.FrameSampler(video_path) as sampler, \
            L.VisionEncoder(model, **encoder_kwargs) as encoder, \
            L.Pooler(model) as pooler:
        with sampler.uniform(frames) as picked, encoder.encode_video(picked) as features:
            return pooler.apply(features)


def prompt_for(model, question):
    return model.render_chat([{"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": question}]}], add_generation_prompt=True)


# ---- library and version ---------------------------------------------------------------------

def test_version_matches_binding():
    assert L.version_number() // 10000 == L.BINDING_VERSION_NUMBER // 10000
    assert L.version_number() >= L.BINDING_VERSION_NUMBER
    assert L.version().count(".") == 2
    assert os.path.exists(L.library_path())


def test_status_string_is_total():
    assert L.status_string(L.Status.E_IO)
    assert L.status_string(-12345) == "unknown status"


# ---- end to end ------------------------------------------------------------------------------

def test_end_to_end_matches_reference(model, video_path, reference):
    gen = reference["generation"]
    stages = []
    embeddings = video_embeddings(model, video_path, reference["num_frames"])
    assert embeddings.kind == L.TensorKind.VIDEO_EMBEDDINGS
    prompt = prompt_for(model, reference["question"])
    assert prompt == reference["prompt_text"]
    with L.Generator(model, temperature=0.0, max_new_tokens=gen["max_new_tokens"],
                     progress=lambda stage, done, total: stages.append(stage)) as g:
        g.append_prompt(prompt, [embeddings])
        assert g.token_ids() == reference["input_ids"]
        tokens = list(g.tokens())
        ids = [t.id for t in tokens if t.id >= 0]
        text = "".join(t.piece for t in tokens)
    assert ids == gen["generated_ids"]
    assert text == gen["generated_text"]
    assert L.Stage.PREFILL in stages


def test_streaming_iterator_and_push_helper(model, video_path, reference):
    gen = reference["generation"]
    embeddings = video_embeddings(model, video_path, reference["num_frames"])
    prompt = prompt_for(model, reference["question"])
    with L.Generator(model, temperature=0.0, max_new_tokens=gen["max_new_tokens"]) as g:
        g.append_prompt(prompt, [embeddings])
        pieces = list(g)  # iterating yields the text pieces
        assert all(isinstance(p, str) and p for p in pieces)
        assert "".join(pieces) == gen["generated_text"]
        assert g.position == reference["num_input_tokens"] + len(gen["generated_ids"])
        g.reset()
        assert g.position == 0
        seen = []
        g.append_prompt(prompt, [embeddings])
        g.generate(lambda piece, token: seen.append((piece, token)))
        assert [t for _, t in seen if t >= 0] == gen["generated_ids"]


def test_tensor_and_frames_numpy_views_are_zero_copy(model, video_path):
    np = pytest.importorskip("numpy")
    with L.FrameSampler(video_path) as sampler:
        frames = sampler.uniform(4)
    arr = frames.numpy()
    assert arr.shape == (4, frames.height, frames.width, 3) and arr.dtype == np.uint8
    address = L._lib.lib().llavanext_frames_data(frames._h, 0)
    assert arr.ctypes.data == address  # no copy
    assert not arr.flags.writeable
    copy = arr.copy()
    frames.close()  # the array keeps the C memory alive
    gc.collect()
    assert np.array_equal(arr, copy)
    with L.VisionEncoder(model) as enc, L.FrameSampler(video_path) as s, s.uniform(2) as f:
        feats = enc.encode_video(f)
    view = np.asarray(feats)
    assert view.shape == feats.shape and view.dtype == np.float32
    assert view.ctypes.data == L._lib.lib().llavanext_tensor_data(feats._h)
    again = L.Tensor.create(L.TensorKind.OTHER, view)
    assert again.shape == feats.shape and np.array_equal(again.numpy(), view)


def test_buffers_without_numpy(video_path):
    with L.FrameSampler(video_path) as sampler, sampler.uniform(2) as frames:
        mv = frames.buffer()
        assert mv.shape == (2, frames.height, frames.width, 3) and mv.readonly
    t = L.Tensor.create(L.TensorKind.OTHER, [1.0, 2.5, -3.0, 4.0], shape=(2, 2))
    assert t.shape == (2, 2)
    assert t.buffer().tolist() == [[1.0, 2.5], [-3.0, 4.0]]


# ---- errors ----------------------------------------------------------------------------------

def test_missing_model_dir_raises_io_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(L.LlavaNextError) as info:
        L.Model(missing)
    err = info.value
    assert err.status == L.Status.E_IO
    assert isinstance(err, L.IOFailedError)
    assert err.message and "no-such-model" in err.message
    assert "no-such-model" in str(err)


def test_bad_arguments_raise_with_status(model, video_path):
    with L.FrameSampler(video_path) as sampler:
        with pytest.raises(L.LlavaNextError) as info:
            sampler.uniform(0)
        assert info.value.status == L.Status.E_INVALID_ARGUMENT and info.value.message
    with L.Generator(model) as g:
        with pytest.raises(L.InvalidArgumentError):
            g.append_prompt("USER: <video> hi", [])  # one placeholder, no media


def test_closed_handle_is_rejected(model_dir):
    m = L.Model(model_dir, load_mode=L.LoadMode.NO_WEIGHTS)
    m.close()
    m.close()  # idempotent
    with pytest.raises(ValueError):
        m.tokenize("hello")


def test_no_weights_model_cannot_make_an_encoder(model_dir):
    with L.Model(model_dir, load_mode=L.LoadMode.NO_WEIGHTS) as m:
        assert m.tokenize("hello")
        with pytest.raises(L.StateError):
            L.VisionEncoder(m)


# ---- callbacks -------------------------------------------------------------------------------

class Boom(BaseException):
    """Not an Exception subclass: the trampoline must stop anything, like KeyboardInterrupt."""


def test_progress_exception_aborts_and_is_reraised(model_dir, video_path, reference):
    calls = []

    def progress(stage, done, total):
        calls.append((stage, done, total))
        if len(calls) == 2:
            raise Boom("stop here")

    with pytest.raises(Boom) as info:
        L.Model(model_dir, progress=progress)
    assert str(info.value) == "stop here"
    assert isinstance(info.value.__cause__, L.AbortedError)
    assert info.value.__cause__.status == L.Status.E_ABORTED
    assert len(calls) == 2 and calls[0][0] == L.Stage.LOAD  # no call after the abort

    # The library is intact: loading again works and answers as before.
    with L.Model(model_dir) as m:
        emb = video_embeddings(m, video_path, reference["num_frames"])
        with L.Generator(m, temperature=0.0, max_new_tokens=4) as g:
            g.append_prompt(prompt_for(m, reference["question"]), [emb])
            ids = [t.id for t in g.tokens() if t.id >= 0]
    assert ids == reference["generation"]["generated_ids"][:4]


def test_progress_false_aborts(model, video_path):
    with L.FrameSampler(video_path) as s, s.uniform(2) as frames, \
            L.VisionEncoder(model, progress=lambda *a: False) as enc:
        with pytest.raises(L.AbortedError) as info:
            enc.encode_video(frames)
        assert info.value.status == L.Status.E_ABORTED


def test_exception_in_encoder_and_generator_progress(model, video_path, reference):
    def fail(stage, done, total):
        raise ValueError("progress %s" % stage.name)

    with L.FrameSampler(video_path) as s, s.uniform(2) as frames:
        with L.VisionEncoder(model, progress=fail) as enc:
            with pytest.raises(ValueError, match="ENCODE"):
                enc.encode_video(frames)
        emb = video_embeddings(model, video_path, 2)
    with L.Generator(model, temperature=0.0, max_new_tokens=3, progress=fail) as g:
        g.append_prompt(prompt_for(model, "hi"), [emb])
        with pytest.raises(ValueError, match="PREFILL"):
            g.next_token()


def test_token_callback_exception_is_reraised(model):
    with L.Generator(model, temperature=0.0, max_new_tokens=8) as g:
        g.append_prompt("USER: hello ASSISTANT:")
        seen = []

        def cb(piece, token):
            seen.append(token)
            raise KeyError("enough")

        with pytest.raises(KeyError):
            g.generate(cb)
        assert len(seen) == 1


def test_log_callback_receives_messages(model_dir):
    messages = []
    with L.Model(model_dir, log=lambda level, msg: messages.append((level, msg))):
        pass
    assert all(isinstance(m, str) for _, m in messages)


# ---- text ------------------------------------------------------------------------------------

def test_tokenizer_round_trip(model, reference):
    text = "Hello world! Ünïcödé ✓ 線 and numbers 12345."
    ids = model.tokenize(text, add_bos=True)
    assert ids[0] == model.bos_id
    assert model.tokenize(text, add_bos=False) == ids[1:]
    assert model.detokenize(ids, skip_special=True) == text
    # The reference prompt: the <video> placeholder is one special token before expansion.
    expected = [i for k, i in enumerate(reference["input_ids"])
                if not (i == model.video_token_id and reference["input_ids"][k - 1] == i)]
    assert model.tokenize(reference["prompt_text"]) == expected
    with pytest.raises(L.InvalidArgumentError):
        model.tokenize(b"bad \xff utf-8")


def test_render_chat(model, reference):
    assert model.render_chat(reference["conversation"]) == reference["prompt_text"]
    without = model.render_chat(reference["conversation"], add_generation_prompt=False)
    assert "ASSISTANT:" not in without or without != reference["prompt_text"]
    two_turns = reference["conversation"] + [
        {"role": "assistant", "content": [{"type": "text", "text": "Because."}]},
        {"role": "user", "content": [{"type": "text", "text": "Really?"}]}]
    rendered = model.render_chat(two_turns)
    assert rendered.startswith(reference["prompt_text"]) and "Because." in rendered
    with pytest.raises(L.LlavaNextError):
        model.render_chat("not json")


def test_model_queries(model):
    d = model.describe()
    assert isinstance(d, dict) and d
    assert model.vocab_size > 0 and model.context_length() > 0
    assert model.tokens_per_frame() == 4
    b = model.plan_budget(8, text_tokens=20, max_new_tokens=24)
    assert b.tokens_per_frame == 4 and b.visual_tokens == 32 and b.fits


def test_model_is_shared_between_threads(model):
    results = []

    def work():
        results.append(model.tokenize("the same text from many threads"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == results[0] for r in results)


# ---- finding the library ---------------------------------------------------------------------

def _probe(env):
    code = "import llavanext; print(llavanext.library_path()); print(llavanext.version())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def _base_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("LLAVANEXT_LIBRARY", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH")}
    env["PYTHONPATH"] = SRC
    return env


def test_finds_library_through_ld_library_path():
    env = _base_env()
    env["LD_LIBRARY_PATH"] = os.path.dirname(L.library_path())
    r = _probe(env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[1] == L.version()


def test_finds_library_through_pkg_config():
    pc = os.environ.get("PKG_CONFIG_PATH")
    if not pc:
        pytest.skip("PKG_CONFIG_PATH not set (the meson test sets it to meson-uninstalled)")
    env = _base_env()
    env["PKG_CONFIG_PATH"] = pc
    r = _probe(env)
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(r.stdout.split("\n")[0]) == os.path.realpath(L.library_path())


def test_bad_library_path_fails_loudly():
    env = _base_env()
    env["LLAVANEXT_LIBRARY"] = "/nonexistent/libllavanext.so"
    r = _probe(env)
    assert r.returncode != 0 and "LLAVANEXT_LIBRARY" in r.stderr


# ---- the ctypes mirrors against the header ---------------------------------------------------

def _header_text():
    candidates = [os.environ.get("LLAVANEXT_INCLUDE_DIR", ""),
                  os.path.join(os.path.dirname(SRC), "..", "..", "include")]
    for d in candidates:
        path = os.path.join(d, "llavanext", "llavanext.h") if d else ""
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    pytest.skip("llavanext.h not found (set LLAVANEXT_INCLUDE_DIR)")


STRUCTS = {
    "llavanext_model_params": "ModelParams",
    "llavanext_budget": "Budget",
    "llavanext_frame_sampler_params": "FrameSamplerParams",
    "llavanext_media_info": "MediaInfo",
    "llavanext_vision_encoder_params": "VisionEncoderParams",
    "llavanext_pooler_params": "PoolerParams",
    "llavanext_generator_params": "GeneratorParams",
    "llavanext_embedding_cache_params": "EmbeddingCacheParams",
    "llavanext_embedding_key": "EmbeddingKey",
    "llavanext_embedding_cache_stats": "EmbeddingCacheStats",
}


def test_struct_mirrors_match_header():
    header = _header_text()
    for c_name, py_name in STRUCTS.items():
        m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (c_name, c_name), header, flags=re.S)
        assert m, c_name
        fields = [re.search(r"(\w+)\s*(\[\d+\])?\s*$", decl.strip()).group(1)
                  for decl in m.group(1).split(";") if decl.strip()]
        mirror = [f[0] for f in getattr(L._lib, py_name)._fields_]
        assert mirror == fields, "%s: ctypes %s, header %s" % (c_name, mirror, fields)


def test_function_table_matches_header():
    header = _header_text()
    protos = re.findall(r"LLAVANEXT_API\s+[^;]*?\b(llavanext_\w+)\s*\(([^;]*?)\)\s*;", header,
                        flags=re.S)
    declared = {}
    for name, args in protos:
        declared[name] = 0 if args.strip() == "void" else len(args.split(","))
    table = {name: len(argtypes) for name, (_, argtypes) in L._lib._FUNCTIONS.items()}
    not_wrapped = {"llavanext_frame_sampler_open_callbacks"}  # host I/O callbacks: not exposed
    assert set(table) == set(declared) - not_wrapped
    for name, n in table.items():
        assert n == declared[name], name


def test_embedding_cache_round_trip(model, video_path, tmp_path):
    digest = L.media_hash(path=video_path)
    assert digest == L.media_hash(open(video_path, "rb").read())
    with L.EmbeddingCache(tmp_path / "cache") as cache:
        assert cache.get(model, digest, frames=3) is None
        with video_embeddings(model, video_path, 3) as emb:
            cache.put(model, digest, emb, frames=3)
            with cache.get(model, digest, frames=3) as hit:
                assert hit.shape == emb.shape and hit.kind == L.TensorKind.VIDEO_EMBEDDINGS
                assert bytes(hit.buffer()) == bytes(emb.buffer())
        assert cache.get(model, digest, frames=4) is None
        s = cache.stats()
        assert (s.hits, s.misses, s.writes, s.entries) == (1, 2, 1, 1)
        with pytest.raises(L.InvalidArgumentError, match="frames >= 1"):
            cache.get(model, digest, frames=0)
        assert "frames >= 1" in cache.last_error()


# ---- LLaVA-OneVision (SigLIP + Qwen2) ---------------------------------------------------------

def test_onevision_video_matches_reference(data_dir):
    """tests/data/tiny-ov from a video file through the binding: pooler.apply projects, then
    resizes; the generator adds the newline after the video; greedy ids as transformers."""
    with open(data_dir / "reference" / "tiny-ov" / "video8_mjpeg" / "case.json", encoding="utf-8") as f:
        ref = json.load(f)
    with L.Model(data_dir / "tiny-ov") as model:
        video = data_dir / "media" / "clip_mjpeg_96x72_45f.avi"
        with L.FrameSampler(video) as sampler, L.VisionEncoder(model) as encoder, L.Pooler(model) as pooler:
            assert pooler.tokens_per_frame == 9
            with sampler.uniform(8) as picked, encoder.encode_video(picked) as features:
                projected = pooler.project(features)
                assert projected.kind == L.TensorKind.VIDEO_PROJECTED
                embeddings = pooler.pool(projected)
        assert embeddings.kind == L.TensorKind.VIDEO_EMBEDDINGS
        prompt = model.render_chat(ref["conversation"], add_generation_prompt=True)
        assert prompt == ref["prompt_text"]
        with L.Generator(model, temperature=0.0, max_new_tokens=12) as g:
            g.append_prompt(prompt, [embeddings])
            assert len(g.token_ids()) == ref["num_input_tokens"]
            ids = [t.id for t in g.tokens() if t.id >= 0]
        assert ids == ref["generated_ids"]


# ---- quantized weights -----------------------------------------------------------------------

def test_quantized_weights_load_and_answer(model_dir, video_path, reference):
    loads = []
    with L.Model(model_dir, weights=L.Weights.Q8, threads=2,
                 progress=lambda stage, done, total: loads.append((done, total))) as m:
        embeddings = video_embeddings(m, video_path, reference["num_frames"])
        with L.Generator(m, temperature=0.0, max_new_tokens=4) as g:
            g.append_prompt(prompt_for(m, reference["question"]), [embeddings])
            ids = [t.id for t in g.tokens() if t.id >= 0]
    assert len(ids) == 4
    # one progress unit per converted tensor, then the binding steps
    assert loads[-1][0] == loads[-1][1] > 3
    with pytest.raises(L.InvalidArgumentError):
        L.Model(model_dir, weights=9)


def test_kv_cache_types(model, video_path, reference):
    gen = reference["generation"]
    embeddings = video_embeddings(model, video_path, reference["num_frames"])
    prompt = prompt_for(model, reference["question"])
    # a float32 cache read back in blocks of 8 prompt positions keeps the reference's tokens
    with L.Generator(model, temperature=0.0, max_new_tokens=gen["max_new_tokens"], prefill_chunk=8,
                     kv_cache=L.KVCache.F32) as g:
        g.append_prompt(prompt, [embeddings])
        assert [t.id for t in g.tokens() if t.id >= 0] == gen["generated_ids"]
    with L.Generator(model, temperature=0.0, max_new_tokens=4, prefill_chunk=8, kv_cache=L.KVCache.Q8) as g:
        g.append_prompt(prompt, [embeddings])
        assert len([t.id for t in g.tokens() if t.id >= 0]) == 4
    with pytest.raises(L.InvalidArgumentError):
        L.Generator(model, kv_cache=7)
