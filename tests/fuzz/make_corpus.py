#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the test
fixtures in tests/data. Deterministic; rerun after a fixture changes:

    python3 tests/fuzz/make_corpus.py

Every seed is small (a few KB; the media seeds are the fixture files themselves). Files whose
names start with "crash-" are inputs that once crashed a target: this script never touches them.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
OUT = os.path.join(HERE, "corpus")


def data(*parts):
    return os.path.join(DATA, *parts)


def write(target, name, payload):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    if isinstance(payload, str):
        payload = payload.encode()
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(payload)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- safetensors --------------------------------------------------------------------------

def safetensors(entries, metadata=None):
    """entries: [(name, dtype, shape, raw bytes)] laid out back to back."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def fixture_tensors(path, limit_bytes):
    """The small tensors of a fixture safetensors file: (name, dtype, shape, raw bytes)."""
    raw = read(path)
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if end - b <= limit_bytes:
            out.append((name, e["dtype"], e["shape"], raw[8 + n + b:8 + n + end]))
    return sorted(out)


def seed_safetensors():
    small = fixture_tensors(data("tiny-a", "model.safetensors"), 256)
    write("safetensors", "tiny_a_norms", safetensors(small[:8], {"format": "pt"}))
    ref = fixture_tensors(data("reference", "tiny-a", "text_long", "reference.safetensors"), 512)
    write("safetensors", "reference_small", safetensors(ref[:6]))
    write("safetensors", "dtypes", safetensors([
        ("f32", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3)),
        ("f16", "F16", [3], struct.pack("<3e", 1, 2, -0.25)),
        ("bf16", "BF16", [2], b"\x80\x3f\x00\xc0"),
        ("f64", "F64", [1], struct.pack("<d", 1e300)),
        ("i64", "I64", [2], struct.pack("<2q", -1, 7)),
        ("i32", "I32", [1, 1], struct.pack("<i", 5)),
        ("i16", "I16", [2], struct.pack("<2h", 1, -1)),
        ("i8", "I8", [3], b"\x01\xff\x00"),
        ("u8", "U8", [0], b""),
        ("bool", "BOOL", [2], b"\x01\x00"),
        ("scalar", "F32", [], struct.pack("<f", 42)),
    ]))
    write("safetensors", "empty_header", struct.pack("<Q", 2) + b"{}")
    nan = struct.pack("<4f", float("nan"), float("inf"), -float("inf"), 0)
    write("safetensors", "nonfinite", safetensors([("w", "F32", [4], nan)], {"note": "x"}))


# ---- config ---------------------------------------------------------------------------------

def seed_config():
    cfg = read(data("tiny-a", "config.json"))
    pre = read(data("tiny-a", "preprocessor_config.json"))
    gen = read(data("tiny-a", "generation_config.json"))
    write("config", "tiny_a_all", cfg + b"\0" + pre + b"\0" + gen)
    write("config", "tiny_a_config", cfg)
    c = json.loads(cfg)
    c["text_config"].update({"model_type": "mistral", "sliding_window": 32, "rope_scaling": None})
    c["vision_config"]["hidden_act"] = "gelu_pytorch_tanh"
    c["spatial_pool_mode"] = "max"
    c["vision_feature_select_strategy"] = "full"
    write("config", "mistral_variant", json.dumps(c))
    write("config", "defaults_only", '{"text_config": {}, "vision_config": {}}\0{}\0{"eos_token_id": [2, 3]}')
    ov = [read(data("tiny-ov", f)) for f in ("config.json", "preprocessor_config.json", "generation_config.json")]
    write("config", "tiny_ov_all", b"\0".join(ov))
    write("config", "onevision_defaults", '{"model_type": "llava_onevision"}\0{"size": {"height": 384, "width": 384}}\0{}')


# ---- tokenizer ------------------------------------------------------------------------------

def small_tokenizer(path, keep_pieces):
    """A tokenizer.json with the specials, the byte pieces, the first `keep_pieces` other pieces
    and the merges among them."""
    t = json.loads(read(path))
    vocab = t["model"]["vocab"]
    kept = {}
    for piece, i in sorted(vocab.items(), key=lambda kv: kv[1]):
        if i < 3 + 256 or len(kept) < 3 + 256 + keep_pieces:
            kept[piece] = i
    merges = []
    for m in t["model"]["merges"]:
        left, right = m.split(" ") if isinstance(m, str) else m
        if left in kept and right in kept and left + right in kept:
            merges.append(m)
    t["model"]["vocab"] = kept
    t["model"]["merges"] = merges
    return json.dumps(t, ensure_ascii=False, separators=(",", ":")).encode()


def seed_tokenizer():
    cases = json.loads(read(data("tokenizer", "llama2-cases.json")))["cases"]
    texts = [c["text"] for c in cases]
    for i, text in enumerate(texts[:12]):
        write("tokenizer", "text_%02d" % i, bytes([i & 1]) + text.encode())
    write("tokenizer", "text_specials", b"\x01<video>\nWhat happens in <image> and </s><s><unk>?")
    write("tokenizer", "text_bytes", b"\x00" + "\u00e9\u4e2d\U0001f642\u2581\t\r\n  ".encode())
    llama = small_tokenizer(data("tiny-a", "tokenizer.json"), 40)
    cfg = read(data("tiny-a", "tokenizer_config.json"))
    write("tokenizer", "load_llama", b"\x02" + llama)
    write("tokenizer", "load_llama_config", b"\x03" + llama + b"\0" + cfg)
    mistral = small_tokenizer(data("tokenizer", "mistral", "tokenizer.json"), 40)
    write("tokenizer", "load_mistral", b"\x02" + mistral)
    qwen2 = small_tokenizer(data("tiny-ov", "tokenizer.json"), 40)
    write("tokenizer", "load_qwen2_bytelevel", b"\x03" + qwen2 + b"\0" + read(data("tiny-ov", "tokenizer_config.json")))


# ---- template -------------------------------------------------------------------------------

def seed_template():
    templates = json.loads(read(data("templates", "chat_templates.json")))["templates"]
    cases = json.loads(read(data("templates", "cases.json")))["cases"]
    seen = set()
    for c in cases:
        if c["template"] in seen:
            continue
        seen.add(c["template"])
        src = templates[c["template"]]["template"]
        write("template", c["template"], src.encode() + b"\0" + json.dumps(c["messages"]).encode())
    write("template", "constructs",
          "{% set ns = namespace(n=0) %}{% for m in messages if m.role != 'system' %}{{ loop.index }}"
          "{{ m['content'] | string | trim | upper }}{% set ns.n = ns.n + 1 %}{% if loop.last %}{{ ns.n }}"
          "{% endif %}{% else %}none{% endfor %}{{ (range(3) | list)[1:] }}{{ '%d' % 3 if true else 'x' }}"
          "{% if add_generation_prompt %}{{ bos_token ~ 'A:' }}{% endif %}{{ raise_exception('stop') if false }}")
    write("template", "raise", "{{ raise_exception('Conversation roles must alternate') }}")


# ---- media ----------------------------------------------------------------------------------

def seed_media():
    files = sorted(os.listdir(data("media")))
    for i, name in enumerate(files):
        # the mode byte: memory or callbacks, read or pull, 1 to 4 frames
        write("media", os.path.splitext(name)[0], bytes([i % 16]) + read(data("media", name)))
    y4m = b"YUV4MPEG2 W8 H8 F25:1 Ip A1:1 C420jpeg\n"
    frame = b"FRAME\n" + bytes(range(64)) + b"\x80" * 32
    write("media", "y4m_two_frames", b"\x0d" + y4m + frame + frame)
    write("media", "y4m_no_frames", b"\x00" + y4m)


# ---- llavanext-server's chat-completions requests -------------------------------------------

def seed_chat():
    import base64

    def video(url):
        return {"type": "video_url", "video_url": {"url": url}}

    png = base64.b64encode(read(data("media", "image_120x80.png"))).decode()
    webm = base64.b64encode(read(data("media", "clip_vp9_128x96_60f.webm"))[:3000]).decode()
    requests = {
        "text_only": {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "hello"}],
                      "max_tokens": 8, "temperature": 0.5, "top_p": 0.9, "seed": -3, "stop": ["a", "b"]},
        "video_path": {"messages": [{"role": "user", "content": [video("clip_h264_90x50_41f.mp4"),
                                                                  {"type": "text", "text": "What?"}]}],
                       "num_frames": 4, "stream": True, "stream_options": {"include_usage": True}},
        "file_url": {"messages": [{"role": "user", "content": [video("file:///etc/../etc/passwd"),
                                                                video("file://localhost/x%20y.mp4")]}]},
        "image_data": {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}}]}], "fps": 2},
        "input_video": {"messages": [{"role": "user", "content": [
            {"type": "input_video", "input_video": {"data": webm}}]}]},
        "multi_turn": {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": None},
                                    {"role": "developer", "content": [{"type": "text", "text": "b"}]}],
                       "max_completion_tokens": 3, "n": 1},
        "bad_types": {"messages": [{"role": "user", "content": [{"type": "audio_url"}, 7, None]}],
                      "stop": "x", "stream": "yes", "tools": [{}]},
    }
    for name, req in requests.items():
        write("chat", name, json.dumps(req))
    write("chat", "base64_raw", "SGVsbG8sIHdvcmxk\nIQ==")
    write("chat", "truncated", '{"messages": [{"role": "user", "content": [{"type": "video_url", "video')


def main():
    seed_chat()
    seed_safetensors()
    seed_config()
    seed_tokenizer()
    seed_template()
    seed_media()


if __name__ == "__main__":
    main()
