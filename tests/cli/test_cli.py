"""llavanext-cli driven as a user drives it: every subcommand, every usage error, and the
outputs of `run` on every reference case (greedy ids, --dump tensors within tolerance)."""
import json
import os
import struct
import subprocess

import pytest

CLI = os.environ.get("LLAVANEXT_CLI", "build/examples/llavanext-cli")
DATA = os.environ.get("LLAVANEXT_TEST_DATA", "tests/data")
MODEL = os.path.join(DATA, "tiny-a")
REF = os.path.join(DATA, "reference", "tiny-a")
CASES = sorted(os.listdir(REF)) if os.path.isdir(REF) else []


def cli(*args, input=None):
    return subprocess.run([CLI, *args], capture_output=True, input=input, timeout=300)


def load_safetensors(path):
    fmt = {"F32": ("f", 4), "I64": ("q", 8), "U8": ("B", 1), "BF16": ("H", 2)}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        code, size = fmt[meta["dtype"]]
        a, b = meta["data_offsets"]
        out[name] = (meta["shape"], struct.unpack(f"<{(b - a) // size}{code}", data[a:b]))
    return out


def case(name):
    with open(os.path.join(REF, name, "case.json")) as f:
        return json.load(f)


def run_args(c):
    args = ["run", "--model", MODEL]
    for item in c["conversation"][0]["content"]:
        if item["type"] == "image":
            args += ["--image", os.path.join(DATA, c["media"])]
        elif item["type"] == "video":
            args += ["--video", os.path.join(DATA, c.get("video_media", c["media"])), "--frames", str(c["num_frames"])]
    return args + ["--prompt", c["question"], "--max-tokens", "24", "--temperature", "0"]


@pytest.mark.parametrize("name", CASES)
def test_run_json_matches_reference_generation(name):
    c = case(name)
    r = cli(*run_args(c), "--json")
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    assert out["generated_ids"] == c["generation"]["generated_ids"][: len(out["generated_ids"])]
    want = c["generation"]["generated_ids"]
    assert len(out["generated_ids"]) + (1 if c["generation"]["stopped_on_eos"] else 0) == len(want)
    assert out["text"] == c["generation"]["generated_text"]
    assert out["prompt_tokens"] == c["num_input_tokens"]
    assert set(out["timings"]) >= {"sample", "encode", "prefill", "generate"}


@pytest.mark.parametrize("name", CASES)
def test_run_streams_the_answer_and_dumps_reference_tensors(name, tmp_path):
    c = case(name)
    dump = tmp_path / "dump.safetensors"
    r = cli(*run_args(c), "--dump", str(dump))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == c["generation"]["generated_text"] + "\n"
    ours = load_safetensors(dump)
    ref = load_safetensors(os.path.join(REF, name, "reference.safetensors"))
    expected = {"input_ids", "logits_last"}
    if "video" in c["kind"]:
        expected |= {"frame_indices", "video_frames_rgb24", "pixel_values_videos", "video_selected_features",
                     "video_pooled_features", "video_projected_features"}
    if "image" in c["kind"]:
        expected |= {"image_rgb24", "pixel_values", "image_selected_features", "image_projected_features",
                     "image_packed_features", "image_sizes"}
    assert expected <= set(ours), expected - set(ours)
    for name_ in expected:
        shape, got = ours[name_]
        rshape, want = ref[name_]
        assert shape == rshape, (name_, shape, rshape)
        tol = 1e-3 if "logits" in name_ else 1e-6 if name_.startswith("pixel_values") else 1e-4
        if name_.endswith("rgb24") or name_ in ("input_ids", "frame_indices", "image_sizes"):
            tol = 0
        worst = max((abs(a - b) for a, b in zip(got, want)), default=0.0)
        assert worst <= tol, (name_, worst)


def test_tokenize_and_detokenize_round_trip():
    r = cli("tokenize", "--model", MODEL, "USER: <video>\nWhy is this video funny? ASSISTANT:")
    assert r.returncode == 0, r.stderr
    ids = r.stdout.decode().split()
    assert ids[:4] == ["1", "3148", "1001", "29901"]
    assert "32000" in ids
    r2 = cli("tokenize", "--model", MODEL, "--no-bos", "Hello")
    assert r2.stdout.decode() == "15043\n"
    d = cli("detokenize", "--model", MODEL, *ids)
    assert d.returncode == 0
    assert d.stdout.decode() == "<s> USER: <video>\nWhy is this video funny? ASSISTANT:\n"


def test_render_matches_the_case_prompt_exactly(tmp_path):
    for name in CASES:
        c = case(name)
        msgs = tmp_path / "m.json"
        msgs.write_text(json.dumps(c["conversation"]))
        r = cli("render", "--model", MODEL, "--messages", str(msgs))
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode() == c["prompt_text"]
    r = cli("render", "--model", MODEL, "--messages", str(msgs), "--no-generation-prompt")
    assert not r.stdout.decode().endswith("ASSISTANT:")


def test_info_model_and_media():
    r = cli("info", "--model", MODEL)
    info = json.loads(r.stdout)
    assert info["video"]["tokens_per_frame"] == 4
    assert info["context_length"] == {"scaled": 512, "unscaled": 256}
    r = cli("info", "--video", os.path.join(DATA, "media", "clip_h264_160x120_97f.mp4"))
    info = json.loads(r.stdout)
    assert info["frames"] == 97 and info["width"] == 160 and info["height"] == 120
    assert info["codec"] == "h264"


def test_help_and_version():
    r = cli("--help")
    assert r.returncode == 0 and b"usage: llavanext-cli" in r.stdout
    r = cli("run", "--help")
    assert r.returncode == 0
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith(b"llavanext-cli ")


@pytest.mark.parametrize("args,needle", [
    ([], b"no command"),
    (["frobnicate"], b"unknown command"),
    (["run", "--prompt", "x"], b"--model DIR is required"),
    (["run", "--model", MODEL], b"--prompt TEXT is required"),
    (["run", "--model", MODEL, "--prompt", "x", "--frames", "4"], b"must follow the --video"),
    (["run", "--model", MODEL, "--prompt", "x", "--video", "v.mp4", "--frames", "zero"], b"not a frame count"),
    (["run", "--model", MODEL, "--prompt", "x", "--temperature", "-1"], b"--temperature"),
    (["run", "--model", MODEL, "--prompt", "x", "--pool-mode", "median"], b"neither average nor max"),
    (["run", "--model", MODEL, "--prompt", "x", "--rope-scale", "0.5"], b"--rope-scale"),
    (["run", "--model", MODEL, "--prompt", "x", "--bogus"], b"unknown option"),
    (["run", "--model", MODEL, "--prompt", "x", "--max-tokens"], b"needs a value"),
    (["tokenize", "--model", MODEL], b"exactly one TEXT"),
    (["tokenize", "hello"], b"--model DIR is required"),
    (["detokenize", "--model", MODEL, "12", "abc"], b"not a token id"),
    (["render", "--model", MODEL], b"--messages FILE"),
    (["info"], b"info takes"),
    (["chat", "--model", MODEL, "--prompt", "x"], b"exactly one --video"),
    (["run", "--model", MODEL, "--prompt", "x", "--weights", "q5"], b"--weights"),
    (["run", "--model", MODEL, "--prompt", "x", "--kv-cache", "q4"], b"--kv-cache"),
    (["quantize", "--model", MODEL, "--weights", "q8"], b"--out DIR"),
    (["quantize", "--model", MODEL, "--out", "x", "--weights", "stored"], b"--weights"),
    (["quantize", "--model", MODEL, "--out", MODEL, "--weights", "q8"], b"must not be the --model"),
])
def test_usage_errors(args, needle):
    r = cli(*args)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert needle in r.stderr, r.stderr


def test_library_errors_exit_1_with_message(tmp_path):
    r = cli("run", "--model", str(tmp_path / "missing"), "--prompt", "x")
    assert r.returncode == 1 and b"not a directory" in r.stderr
    r = cli("run", "--model", MODEL, "--prompt", "x", "--video", str(tmp_path / "none.mp4"))
    assert r.returncode == 1 and b"none.mp4" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"role\": \"user\"")
    r = cli("render", "--model", MODEL, "--messages", str(bad))
    assert r.returncode == 1 and b"invalid JSON" in r.stderr


def test_token_budget_is_checked_before_encoding_and_fit_applies_it():
    video = os.path.join(DATA, "media", "clip_h264_160x120_97f.mp4")
    base = ["run", "--model", MODEL, "--video", video, "--frames", "64", "--prompt", "Why?", "--max-tokens", "4",
            "--temperature", "0", "--context", "120"]
    r = cli(*base)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "needs" in err and "suggestion: --frames" in err and "--pool-stride" in err
    r = cli(*base, "--fit", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["frames"] < 64
    assert out["prompt_tokens"] + 4 <= 120


def test_rope_scale_auto_applies_the_recipe_rule():
    video = os.path.join(DATA, "media", "clip_h264_160x120_97f.mp4")
    # 64 frames x 4 tokens + 1000 over 256 positions -> ceil(1256 / 256) = 5
    r = cli("run", "--model", MODEL, "--video", video, "--frames", "64", "--prompt", "Why?", "--max-tokens", "2",
            "--rope-scale", "auto", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rope_scale"] == 5
    assert out["context_length"] == 1280


def test_sampled_generation_is_reproducible_with_a_seed():
    args = ["run", "--model", MODEL, "--prompt", "Tell me a story.", "--max-tokens", "12", "--temperature", "0.9",
            "--top-k", "40", "--top-p", "0.9", "--seed", "7", "--json"]
    a = json.loads(cli(*args).stdout)
    b = json.loads(cli(*args).stdout)
    assert a["generated_ids"] == b["generated_ids"]
    c = json.loads(cli(*args[:-3], "--seed", "8", "--json").stdout)
    assert c["generated_ids"] != a["generated_ids"]


def test_chat_answers_several_questions_about_one_video():
    video = os.path.join(DATA, "media", "clip_h264_160x120_97f.mp4")
    r = cli("chat", "--model", MODEL, "--video", video, "--frames", "4", "--prompt", "What happens?",
            "--max-tokens", "6", "--temperature", "0", input=b"And then?\nWhy?\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\n")
    assert len([l for l in lines if l]) >= 3


@pytest.mark.parametrize("model,case_,args", [
    ("tiny-b", "image_jpeg_50x130", ["--image", "media/image_50x130.jpg"]),
    ("tiny-c", "video8_mjpeg", ["--video", "media/clip_mjpeg_96x72_45f.avi", "--frames", "8"]),
])
def test_run_on_other_models_matches_their_references(model, case_, args):
    with open(os.path.join(DATA, "reference", model, case_, "case.json")) as f:
        c = json.load(f)
    media = [os.path.join(DATA, a) if a.startswith("media/") else a for a in args]
    question = c["conversation"][0]["content"][-1]["text"]
    r = cli("run", "--model", os.path.join(DATA, model), *media, "--prompt", question, "--max-tokens", "12",
            "--temperature", "0", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["generated_ids"] == c["generated_ids"]
    assert out["prompt_tokens"] == c["num_input_tokens"]
    assert r.stderr == b""


def test_run_cache_dir_reuses_embeddings(tmp_path):
    cache = str(tmp_path / "cache")
    video = os.path.join(DATA, "media", "clip_h264_160x120_97f.mp4")
    image = os.path.join(DATA, "media", "image_120x80.png")
    base = ["run", "--model", MODEL, "--video", video, "--frames", "5", "--image", image, "--prompt", "What is shown?",
            "--max-tokens", "12", "--temperature", "0", "--json"]
    plain = json.loads(cli(*base).stdout)
    runs = []
    for _ in range(2):
        r = cli(*base, "--cache-dir", cache)
        assert r.returncode == 0, r.stderr.decode()
        runs.append(json.loads(r.stdout))
    assert runs[0]["cache_hits"] == 0 and runs[1]["cache_hits"] == 2
    assert runs[1]["timings"]["encode"] == 0 and runs[1]["timings"]["sample"] == 0
    assert plain["generated_ids"] == runs[0]["generated_ids"] == runs[1]["generated_ids"]
    assert len([f for f in os.listdir(cache) if f.endswith(".safetensors")]) == 2
    # another frame count or pooling is another entry
    r = json.loads(cli(*base[:5], "--frames", "4", *base[7:], "--cache-dir", cache).stdout)
    assert r["cache_hits"] == 1
    r = json.loads(cli(*base, "--pool-stride", "1", "--cache-dir", cache).stdout)
    assert r["cache_hits"] == 1  # the image (pooling applies to video only)
    r = cli(*base, "--cache-dir", cache, "--dump", str(tmp_path / "d.safetensors"))
    assert r.returncode == 2 and b"--cache-dir" in r.stderr


ONEVISION_CASES = [
    ("video8_mjpeg", ["--video", "media/clip_mjpeg_96x72_45f.avi", "--frames", "8"]),
    ("multi_image", ["--image", "media/image_120x80.png", "--image", "media/image_50x130.jpg"]),
    ("image_video_mixed", ["--image", "media/image_120x80.png", "--video", "media/clip_mjpeg_96x72_45f.avi",
                           "--frames", "4"]),
]


@pytest.mark.parametrize("case_,args", ONEVISION_CASES)
def test_run_on_onevision_matches_its_references(case_, args, tmp_path):
    """LLaVA-OneVision (SigLIP + Qwen2, tests/data/tiny-ov) from media files, as a user runs it:
    greedy ids, decoded text, prompt length and the dumped stages against the references."""
    with open(os.path.join(DATA, "reference", "tiny-ov", case_, "case.json")) as f:
        c = json.load(f)
    media = [os.path.join(DATA, a) if a.startswith("media/") else a for a in args]
    question = c["conversation"][0]["content"][-1]["text"]
    dump = tmp_path / "dump.safetensors"
    r = cli("run", "--model", os.path.join(DATA, "tiny-ov"), *media, "--prompt", question, "--max-tokens", "12",
            "--temperature", "0", "--json", "--dump", str(dump))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["generated_ids"] == c["generated_ids"]
    assert out["prompt_tokens"] == c["num_input_tokens"]
    assert out["text"] == c["generated_text"]
    got = load_safetensors(str(dump))
    want = load_safetensors(os.path.join(DATA, "reference", "tiny-ov", case_, "reference.safetensors"))
    names = {"video8_mjpeg": ["video_projected_features", "video_pooled_features"],
             "multi_image": ["image_packed_features", "image_packed_features_1"],
             "image_video_mixed": ["image_packed_features", "video_projected_features", "video_pooled_features"]}
    for name in names[case_]:
        ref_name = name if name in want else "image%d_packed_features" % (1 if name.endswith("_1") else 0)
        assert got[name][0][-2:] == want[ref_name][0][-2:], name
        diff = max(abs(a - b) for a, b in zip(got[name][1], want[ref_name][1]))
        assert diff < 1e-4, (name, diff)


@pytest.mark.parametrize("weights", ["q8", "q4"])
def test_quantize_then_load_answers_as_quantize_on_load(weights, tmp_path):
    out = tmp_path / weights
    r = cli("quantize", "--model", MODEL, "--out", str(out), "--weights", weights, "--threads", "2")
    assert r.returncode == 0, r.stderr.decode()
    assert b"wrote" in r.stderr
    names = sorted(os.listdir(out))
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.json", "model.safetensors"]:
        assert f in names
    tensors = load_safetensors(str(out / "model.safetensors"))
    shape, _ = tensors["language_model.model.layers.0.self_attn.q_proj.weight"]
    assert shape == [64, 34 * 2] if weights == "q8" else shape == [64, 16 + 16 * 2]
    c = case("video8_h264")
    args = run_args(c)
    on_load = cli(*args, "--weights", weights, "--json")
    assert on_load.returncode == 0, on_load.stderr.decode()
    args[args.index("--model") + 1] = str(out)
    written = cli(*args, "--json")
    assert written.returncode == 0, written.stderr.decode()
    a, b = json.loads(on_load.stdout), json.loads(written.stdout)
    assert a["generated_ids"] == b["generated_ids"] and len(a["generated_ids"]) > 0
    # an existing checkpoint is not overwritten
    again = cli("quantize", "--model", MODEL, "--out", str(out), "--weights", weights)
    assert again.returncode == 1 and b"already holds a checkpoint" in again.stderr


def test_kv_cache_option():
    c = case("video8_h264")
    want = c["generation"]["generated_ids"]
    f32 = cli(*run_args(c), "--kv-cache", "f32", "--json")
    assert f32.returncode == 0, f32.stderr.decode()
    assert json.loads(f32.stdout)["generated_ids"] == want[: len(json.loads(f32.stdout)["generated_ids"])]
    for kv in ["f16", "q8"]:
        r = cli(*run_args(c), "--kv-cache", kv, "--weights", "q4", "--json")
        assert r.returncode == 0, (kv, r.stderr.decode())
        assert len(json.loads(r.stdout)["generated_ids"]) > 0
