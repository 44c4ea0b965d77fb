#!/usr/bin/env python3
"""Builds tests/data/tiny-ov, a tiny random-weight LLaVA-OneVision model (SigLIP vision tower +
Qwen2 decoder, the llava-onevision-qwen2-0.5b-ov-hf configuration shrunk), its byte-level BPE
tokenizer, and reference tensors computed by the Hugging Face implementation
(LlavaOnevisionForConditionalGeneration + LlavaOnevisionProcessor, transformers 4.47.1).

The real Qwen2 tokenizer cannot be downloaded here, so a small byte-level BPE is trained with
Hugging Face `tokenizers` on a small corpus, serialised like Qwen2's tokenizer.json: NFC
normaliser, the Qwen2 split regex (Isolated) followed by ByteLevel (no prefix space, no regex),
BPE without byte fallback, merges as "left right" strings, ByteLevel decoder, and the ChatML
special tokens <|endoftext|> <|im_start|> <|im_end|> plus <image> <video> after the BPE vocabulary.

Geometry (real 0.5B in brackets): SigLIP hidden 64 [1152], 3 layers [26], 4 heads [16], MLP 112
[4304], image 72 [384], patch 14 (5x5 grid [27x27]: odd like the real one, so the video
resize to ceil(5/2)=3 [14] exercises the rounding; and like 384 = 27*14 + 6 not a multiple of the
patch, so the patch embedding leaves the last 2 [6] pixels of each side unused), GELU-tanh, LayerNorm eps 1e-6, feature layer
-1 with strategy "full"; Qwen2 hidden 64 [896], 2 layers [24], 4 heads over 2 key/value heads
[14/2], head_dim 16 [64], MLP 160 [4864], rope theta 1e6, RMSNorm eps 1e-6, q/k/v biases, LM head
tied to the embeddings; AnyRes pinpoints 72*[1..6] x 72*[1..6] like the real 384*[1..6]^2.

Cases (reference/tiny-ov/<case>/case.json + reference.safetensors):
  video8_mjpeg   8 frames of tiny-a's MJPEG reference video (RGB24 stored), 8*9+1 video tokens
  image_200x280  a synthetic 200x280 image whose 3x4 grid is too large (anyres_max_9 resize-down)
  multi_image    tiny-a's 120x80 PNG and 50x130 JPEG images in one prompt
  image_video_mixed  the 120x80 PNG and every other of those frames (the 4-frame uniform sampling)
  text_chatml    a ChatML text prompt with a system turn, digits, CJK, emoji and code
Also tokenizer/qwen2-tiny-cases.json: the tokenizer corpus (same schema as llama2-cases.json).

Needs torch, transformers==4.47.1, tokenizers, safetensors, numpy, pillow (a development tool,
not run by the tests). It runs on Debian 12's python3-torch (1.13) and python3-pil (9.4):
  apt-get install python3-torch python3-pil python3-numpy python3-venv
  /usr/bin/python3 -m venv --system-site-packages /tmp/v
  /tmp/v/bin/pip install transformers==4.47.1 safetensors jinja2
  /tmp/v/bin/python scripts/make_onevision_fixture.py
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, LlavaOnevisionImageProcessor,
                          LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor, Qwen2TokenizerFast)
import transformers.generation.utils

# Debian's torch 1.13 cannot import torch.distributed.fsdp under Python 3.11 (a dataclass
# default); generate() only asks whether the model is FSDP-managed, which it is not.
transformers.generation.utils.is_fsdp_managed_module = lambda module: False

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "tests", "data")
NAME = "tiny-ov"
S = 72
PINS = [[S * i, S * j] for i in range(1, 7) for j in range(1, 7)]
BPE_SIZE = 1200

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]

# The chat template of the llava-hf OneVision checkpoints (convert_llava_onevision_weights_to_hf.py)
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{% endif %}"
    "{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

EXTRA_CORPUS = [
    "The year 2024 had 366 days; 3.14159 and 1,000,000 are numbers. Call 555-0123 at 10:45.",
    "视频里有一只猫在桌子上睡觉。这是什么？我们今天去公园散步吧。",
    "東京は日本の首都です。ひらがなとカタカナ。",
    "한국어 문장도 조금 있습니다. 안녕하세요!",
    "Emoji: 😀 🎉 👍🏽 ❤️ 👨‍👩‍👧 🐱 and more 🚀🚀🚀",
    "def main(argv):\n    for i in range(10):\n        print(f\"{i:>4}\")\n    return 0\n",
    "int main(void) { return printf(\"%d\\n\", 42) < 0; }\n\tif (x != y && z >= 3) { x += 1; }",
    "    indented    spaces\t\ttabs\n\n\nnewlines\r\n windows  \u00a0nbsp",
    "Café, naïve, résumé, façade, Ångström, Zürich, São Paulo, Kraków.",
    "What's happening? They're here, we've seen it, I'm sure you'll see, he'd know. IT'S LOUD.",
    "<|im_start|>user\nDescribe the video.<|im_end|>\n<|im_start|>assistant\nA cat is sleeping.<|im_end|>",
]

TOKENIZER_CASES = [
    "Hello world", " Hello world", "Hello  world   !", "hello\nworld\n\n", "line1\r\nline2\r\n",
    "\t\ttabbed\tline", "   ", "", "a", "12345678901234567890", "3.14159 and 1,000,000 and 2024-12-05",
    "I'm sure they're here, we'll see; HE'S LOUD, It'D do. 's 'T",
    "视频里有一只猫在桌子上睡觉。", "東京タワーは日本にあります", "한국어 문장", "مرحبا بالعالم",
    "Emoji 😀 🎉 👍🏽 and a family 👨‍👩‍👧 ❤️", "🚀🚀🚀rocket",
    "Cafe\u0301 and cafe\u0301s and A\u030angstro\u0308m",
    "nbsp\u00a0here and zero\u200bwidth and ideographic\u3000space",
    "def f(x):\n    return x ** 2  # square\n", "if (a != b && c >= 3) { a += 1; }\n\t}\n",
    "   leading and trailing spaces   ", "multiple     spaces     between", "end with newline and spaces  \n  ",
    "<|im_start|>user\nWhat is in the video?<|im_end|>\n<|im_start|>assistant\n",
    "<image>\n<video>\nDescribe both.", "text<|endoftext|>more text", "<|im_end|><|im_end|>",
    "A literal <|im_start without closing and <imag e>", "UPPER lower MiXeD 123abc abc123",
    "!!! ??? ... --- *** ///", "x\n\n\n\ny", "naïve façade Zürich",
]


def corpus_lines():
    """The training text: the shared fixtures' description (a file this project never edits, so
    the tokenizer is reproducible) and the lines above."""
    with open(os.path.join(ROOT, "FIXTURES.md"), encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    return lines + EXTRA_CORPUS * 20


def build_tokenizer(dst):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    from tokenizers import processors
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=BPE_SIZE, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    assert tok.get_vocab_size() == BPE_SIZE, tok.get_vocab_size()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    path = os.path.join(dst, "tokenizer.json")
    tok.save(path)
    qwen2_style(path)
    return path


def qwen2_style(path):
    """Serialises tokenizer.json as Qwen2's published file is: merges as "left right" strings,
    ByteLevel pre-tokenizer / decoder / post-processor with every flag off."""
    j = json.load(open(path, encoding="utf-8"))
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    j["model"]["ignore_merges"] = False
    j["model"]["continuing_subword_prefix"] = ""
    j["model"]["end_of_word_suffix"] = ""
    flags = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["pre_tokenizer"]["pretokenizers"][1].update(flags)
    j["decoder"] = dict(type="ByteLevel", **flags)
    j["post_processor"] = dict(type="ByteLevel", **flags)
    json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False, indent=2)


def tokenizer_cases(path, out):
    tok = Tokenizer.from_file(path)
    cases = []
    for i, text in enumerate(TOKENIZER_CASES):
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_nb = tok.encode(text, add_special_tokens=False).ids
        cases.append({"index": i, "text": text, "ids_with_bos": ids, "ids_without_bos": ids_nb,
                      "tokens_without_bos": tok.encode(text, add_special_tokens=False).tokens,
                      "decoded_with_bos": tok.decode(ids, skip_special_tokens=False),
                      "decoded_with_bos_skip_special": tok.decode(ids, skip_special_tokens=True),
                      "decoded_without_bos": tok.decode(ids_nb, skip_special_tokens=False)})
    doc = {"description": "tests/data/tiny-ov/tokenizer.json (a small byte-level BPE serialised like Qwen2's: NFC, "
                          "Qwen2 split regex, ByteLevel, ChatML specials). There is no BOS, so ids_with_bos equals "
                          "ids_without_bos. Same schema as llama2-cases.json.",
           "produced_by": "Hugging Face tokenizers %s (scripts/make_onevision_fixture.py)" % __import__("tokenizers").__version__,
           "tokenizer_json": "tiny-ov/tokenizer.json", "cases": cases}
    json.dump(doc, open(out, "w", encoding="utf-8"), ensure_ascii=False, indent=1)


def config(vocab, ids):
    return LlavaOnevisionConfig(
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 112,
                       "num_hidden_layers": 3, "num_attention_heads": 4, "image_size": S, "patch_size": 14,
                       "vision_use_head": False},
        text_config={"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                     "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "sliding_window": 4096,
                     "use_sliding_window": False, "max_window_layers": 2, "tie_word_embeddings": True,
                     "vocab_size": vocab, "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"]},
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], projector_hidden_act="gelu",
        vision_feature_select_strategy="full", vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9",
        image_grid_pinpoints=PINS, use_image_newline_parameter=True, tie_word_embeddings=True)


def build_model(cfg):
    torch.manual_seed(int(os.environ.get("OV_SEED", "4")))
    model = LlavaOnevisionForConditionalGeneration(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # the decoder's layers a little wider than the rest: with std 0.08 and tied embeddings
            # the greedy generations of this tiny model repeat one token
            deep = name.startswith("language_model.model.layers.")
            p.normal_(0.0, 0.15 if deep else 0.08)
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.add_(1.0)
    return model.to(torch.bfloat16)


def synthetic_image(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(7)
    r = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 255 * x / w
    b = 255 * (1 - y / h)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    img[h // 3:h // 2, w // 4:w // 2] = [250, 240, 20]  # a block with edges
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def run_case(model, proc, ref, name, conversation, video=None, images=()):
    prompt = proc.apply_chat_template(conversation, add_generation_prompt=True)
    inputs = proc(text=prompt, images=list(images) or None, videos=video, return_tensors="pt")
    m = model
    cfg = m.config
    out = {}
    with torch.no_grad():
        if video is not None:
            pv = inputs["pixel_values_videos"]
            b, f = pv.shape[:2]
            hs = m.vision_tower(pv.reshape(b * f, *pv.shape[2:]), output_hidden_states=True).hidden_states
            sel = hs[cfg.vision_feature_layer]
            proj = m.multi_modal_projector(sel)
            pooled = m.apply_pooling(proj)
            feats = m.get_video_features(pv, cfg.vision_feature_layer, cfg.vision_feature_select_strategy)
            nl = m.image_newline[None, None, :].repeat(feats.shape[0], 1, 1)
            filled = torch.cat((feats, nl), dim=1).flatten(0, 1)
            out.update(video_frames_rgb24=np.ascontiguousarray(video), pixel_values_videos=pv.numpy(),
                       video_selected_features=sel.numpy(), video_projected_features=proj.numpy(),
                       video_pooled_features=pooled.numpy(), video_features=filled.numpy())
        if images:
            feats = m.get_image_features(inputs["pixel_values"], inputs["image_sizes"], cfg.vision_feature_layer,
                                         cfg.vision_feature_select_strategy)
            for i, img in enumerate(images):
                p = "image_" if len(images) == 1 else "image%d_" % i
                n = feats[i].shape[0]
                pv = inputs["pixel_values"][i, :n]
                sel = m.vision_tower(pv, output_hidden_states=True).hidden_states[cfg.vision_feature_layer]
                proj = m.multi_modal_projector(sel)
                assert torch.equal(proj, feats[i])
                packed, _ = m.pack_image_features([proj], inputs["image_sizes"][i:i + 1], image_newline=m.image_newline,
                                                  vision_aspect_ratio=cfg.vision_aspect_ratio)
                px = "pixel_values" if len(images) == 1 else "pixel_values%d" % i
                out.update({p + "rgb24": np.ascontiguousarray(img), px: pv.numpy()[None],
                            p + "sizes": inputs["image_sizes"][i:i + 1].numpy().astype(np.int64),
                            p + "selected_features": sel.numpy(), p + "projected_features": proj.numpy(),
                            p + "packed_features": packed.numpy()})
        fwd = m(**inputs)
        out["logits_last"] = fwd.logits[0, -1].numpy()
        out["input_ids"] = inputs["input_ids"].numpy().astype(np.int64)
        gen = m.generate(**inputs, max_new_tokens=12, do_sample=False)
        out["generated_ids"] = gen[0, inputs["input_ids"].shape[1]:].numpy().astype(np.int64)
    d = os.path.join(ref, name)
    os.makedirs(d, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, os.path.join(d, "reference.safetensors"))
    ids = inputs["input_ids"][0]
    case = {"case": name, "model_dir": NAME, "conversation": conversation, "prompt_text": prompt,
            "num_input_tokens": int(ids.shape[0]),
            "num_image_tokens": int((ids == cfg.image_token_index).sum()),
            "num_video_tokens": int((ids == cfg.video_token_index).sum()),
            "generated_ids": out["generated_ids"].tolist(),
            "generated_text": proc.tokenizer.decode(out["generated_ids"], skip_special_tokens=True),
            "tensors": sorted(out)}
    if images:
        case["image_sizes_hw"] = inputs["image_sizes"].tolist()
    json.dump(case, open(os.path.join(d, "case.json"), "w"), indent=1, ensure_ascii=False)
    print(name, case["num_input_tokens"], "tokens ->", case["generated_ids"])


def main():
    dst = os.path.join(ROOT, NAME)
    ref = os.path.join(ROOT, "reference", NAME)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(ref, ignore_errors=True)
    os.makedirs(dst)
    tok_path = build_tokenizer(dst)
    tokenizer_cases(tok_path, os.path.join(ROOT, "tokenizer", "qwen2-tiny-cases.json"))
    vocab = Tokenizer.from_file(tok_path).get_vocab(with_added_tokens=True)
    ids = {s: vocab[s] for s in SPECIALS}
    model_vocab = (BPE_SIZE + len(SPECIALS) + 63) // 64 * 64
    cfg = config(model_vocab, ids)
    build_model(cfg).save_pretrained(dst, safe_serialization=True)
    tok = Qwen2TokenizerFast(tokenizer_file=tok_path, bos_token=None, eos_token="<|im_end|>",
                             pad_token="<|endoftext|>", unk_token=None, errors="replace", model_max_length=32768,
                             split_special_tokens=False)
    tok.chat_template = CHAT_TEMPLATE
    kw = dict(size={"height": S, "width": S}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    proc = LlavaOnevisionProcessor(image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=PINS, **kw),
                                   video_processor=LlavaOnevisionVideoProcessor(**kw), tokenizer=tok,
                                   num_image_tokens=(S // 14) ** 2, vision_feature_select_strategy="full",
                                   chat_template=CHAT_TEMPLATE)
    proc.save_pretrained(dst)  # rewrites tokenizer.json in the library's own style
    qwen2_style(os.path.join(dst, "tokenizer.json"))
    # the re-serialised tokenizer.json must behave like the trained one
    tokenizer_cases(os.path.join(dst, "tokenizer.json"), os.path.join("/tmp", "qwen2-tiny-cases.check.json"))
    a = json.load(open(os.path.join(ROOT, "tokenizer", "qwen2-tiny-cases.json")))["cases"]
    b = json.load(open("/tmp/qwen2-tiny-cases.check.json"))["cases"]
    assert a == b, "tokenizer.json changed behaviour when saved by the processor"
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(dst, torch_dtype=torch.float32).eval()
    proc = LlavaOnevisionProcessor.from_pretrained(dst)

    tiny_a = os.path.join(ROOT, "reference", "tiny-a")
    frames = load_file(os.path.join(tiny_a, "video8_mjpeg", "reference.safetensors"))["video_frames_rgb24"]
    png = load_file(os.path.join(tiny_a, "image_png_120x80", "reference.safetensors"))["image_rgb24"]
    jpg = load_file(os.path.join(tiny_a, "image_jpeg_50x130", "reference.safetensors"))["image_rgb24"]

    def user(*items, text):
        return [{"role": "user", "content": [{"type": t} for t in items] + [{"type": "text", "text": text}]}]

    run_case(model, proc, ref, "video8_mjpeg", user("video", text="What is going on here?"), video=frames)
    run_case(model, proc, ref, "image_200x280", user("image", text="Describe the picture."),
             images=[synthetic_image(200, 280)])
    run_case(model, proc, ref, "multi_image", user("image", "image", text="What differs between these two?"),
             images=[png, jpg])
    run_case(model, proc, ref, "image_video_mixed", user("image", "video", text="Does the picture appear in the clip?"),
             video=frames[::2], images=[png])
    text = [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]}] + \
        user(text="Summarise: the year 2024 had 366 days, 视频里有一只猫 😀, and `def f(x): return x ** 2`.\n"
                  "    Then   list   three   colours.")
    run_case(model, proc, ref, "text_chatml", text)


if __name__ == "__main__":
    sys.exit(main())
