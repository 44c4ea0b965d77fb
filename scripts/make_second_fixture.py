#!/usr/bin/env python3
"""Builds tests/data/tiny-b and tests/data/tiny-c, tiny random-weight LLaVA-NeXT-Video models
whose geometry differs from tiny-a, and their reference tensors computed by the Hugging Face
implementation:
  tiny-b: 6x6 patch grid, max pooling, feature layer -3, no GQA, other RMSNorm epsilon, rope
          theta and scaling factor, 6-frame video, prompts past the unscaled limit;
  tiny-c: a Mistral text model (the LLaVA-NeXT-Video-7B-32K family) with its tokenizer, 4:1 GQA,
          a 48-position sliding window that a long prompt crosses, and an LM head tied to the
          embeddings (so the checkpoint has no lm_head tensor).

Needs torch, transformers==4.47.1, safetensors, numpy, pillow (a development-time tool, not run by
the tests):  python3 -m venv /tmp/v && /tmp/v/bin/pip install torch transformers==4.47.1 \
    safetensors numpy pillow jinja2 && /tmp/v/bin/python scripts/make_second_fixture.py

Inputs are the RGB24 frames and images of tiny-a's references (decoded by the same FFmpeg the
fixtures used), so the second model's references do not depend on a video decoder."""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from transformers import (LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration, LlavaNextImageProcessor,
                          LlavaNextVideoImageProcessor, LlavaNextVideoProcessor, LlamaTokenizerFast)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
SRC = os.path.join(ROOT, "tiny-a")


def config_b():
    S = 84
    return S, [[84, 168], [168, 84], [168, 168], [252, 84]], LlavaNextVideoConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 48, "intermediate_size": 96,
                       "num_hidden_layers": 4, "num_attention_heads": 3, "image_size": S, "patch_size": 14,
                       "projection_dim": 48, "layer_norm_eps": 1e-6},
        text_config={"model_type": "llama", "hidden_size": 96, "intermediate_size": 200, "num_hidden_layers": 3,
                     "num_attention_heads": 6, "num_key_value_heads": 6, "max_position_embeddings": 128,
                     "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
                     "rope_scaling": {"type": "linear", "rope_type": "linear", "factor": 3.0},
                     "vocab_size": 32064, "pad_token_id": 0},
        vision_feature_layer=-3, vision_feature_select_strategy="default", spatial_pool_mode="max",
        spatial_pool_stride=2, spatial_pool_out_channels=48, projector_hidden_act="gelu",
        image_grid_pinpoints=[[84, 168], [168, 84], [168, 168], [252, 84]], image_token_index=32001,
        video_token_index=32000, tie_word_embeddings=False, image_seq_length=36, video_seq_length=9)


def config_c():
    S = 56
    pins = [[56, 112], [112, 56], [112, 112]]
    return S, pins, LlavaNextVideoConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 64, "intermediate_size": 128,
                       "num_hidden_layers": 3, "num_attention_heads": 4, "image_size": S, "patch_size": 14,
                       "projection_dim": 64},
        text_config={"model_type": "mistral", "hidden_size": 128, "intermediate_size": 224, "num_hidden_layers": 2,
                     "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 16,
                     "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
                     "sliding_window": 48, "vocab_size": 32064, "tie_word_embeddings": True},
        vision_feature_layer=-2, vision_feature_select_strategy="default", spatial_pool_mode="average",
        spatial_pool_stride=2, projector_hidden_act="gelu", image_grid_pinpoints=pins, image_token_index=32001,
        video_token_index=32000, image_seq_length=16, video_seq_length=4)


def build_model(cfg):
    torch.manual_seed(1234)
    model = LlavaNextVideoForConditionalGeneration(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.08)
        # norm weights near 1 so the activations stay in a sensible range
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.add_(1.0)
    return model.to(torch.bfloat16)


def processor(tok_dir, S, pins):
    tok = LlamaTokenizerFast.from_pretrained(tok_dir)
    kw = dict(size={"shortest_edge": S}, crop_size={"height": S, "width": S}, image_grid_pinpoints=pins)
    return LlavaNextVideoProcessor(image_processor=LlavaNextImageProcessor(**kw),
                                   video_processor=LlavaNextVideoImageProcessor(**kw), tokenizer=tok,
                                   chat_template=json.load(open(os.path.join(SRC, "chat_template.json")))["chat_template"],
                                   patch_size=14, vision_feature_select_strategy="default")


def run_case(model, proc, ref, name, question, video=None, image=None):
    content = ([{"type": "image"}] if image is not None else []) + ([{"type": "video"}] if video is not None else [])
    conversation = [{"role": "user", "content": content + [{"type": "text", "text": question}]}]
    prompt = proc.apply_chat_template(conversation, add_generation_prompt=True)
    inputs = proc(text=prompt, images=image, videos=video, return_tensors="pt")
    m = model
    out = {}
    with torch.no_grad():
        if video is not None:
            pv = inputs["pixel_values_videos"]
            b, f = pv.shape[:2]
            hs = m.vision_tower(pv.reshape(b * f, *pv.shape[2:]), output_hidden_states=True).hidden_states
            sel = hs[m.config.vision_feature_layer][:, 1:]
            pooled = m.vision_resampler(sel)
            proj = m.multi_modal_projector(pooled)
            out.update(video_frames_rgb24=np.ascontiguousarray(video), pixel_values_videos=pv.numpy(),
                       video_selected_features=sel.numpy(), video_pooled_features=pooled.numpy(),
                       video_projected_features=proj.numpy())
        if image is not None:
            pv = inputs["pixel_values"]
            hs = m.vision_tower(pv[0], output_hidden_states=True).hidden_states
            sel = hs[m.config.vision_feature_layer][:, 1:]
            proj = m.multi_modal_projector(sel)
            packed, _ = m.pack_image_features([proj], inputs["image_sizes"], "default", image_newline=m.image_newline)
            out.update(image_rgb24=np.ascontiguousarray(image), pixel_values=pv.numpy(),
                       image_sizes=inputs["image_sizes"].numpy().astype(np.int64),
                       image_selected_features=sel.numpy(), image_projected_features=proj.numpy(),
                       image_packed_features=packed.numpy())
        fwd = m(**inputs)
        out["logits_last"] = fwd.logits[0, -1].numpy()
        out["input_ids"] = inputs["input_ids"].numpy().astype(np.int64)
        gen = m.generate(**inputs, max_new_tokens=12, do_sample=False)
        out["generated_ids"] = gen[0, inputs["input_ids"].shape[1]:].numpy().astype(np.int64)
    d = os.path.join(ref, name)
    os.makedirs(d, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, os.path.join(d, "reference.safetensors"))
    case = {"case": name, "model_dir": os.path.basename(ref), "conversation": conversation, "prompt_text": prompt,
            "num_input_tokens": int(inputs["input_ids"].shape[1]),
            "generated_ids": out["generated_ids"].tolist(),
            "generated_text": proc.tokenizer.decode(out["generated_ids"], skip_special_tokens=True),
            "tensors": sorted(out)}
    json.dump(case, open(os.path.join(d, "case.json"), "w"), indent=1, ensure_ascii=False)
    print(name, case["num_input_tokens"], "tokens ->", case["generated_ids"])


def make(name, spec, tok_dir, with_config_template):
    S, pins, cfg = spec()
    dst = os.path.join(ROOT, name)
    ref = os.path.join(ROOT, "reference", name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(ref, ignore_errors=True)
    build_model(cfg).save_pretrained(dst, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(tok_dir, f), dst)
    shutil.copy(os.path.join(SRC, "chat_template.json"), dst)
    if with_config_template:
        for f in ["special_tokens_map.json", "added_tokens.json"]:
            shutil.copy(os.path.join(SRC, f), dst)
    proc = processor(dst, S, pins)
    proc.image_processor.save_pretrained(dst)
    # run the checkpoint as a user loads it: float32 from the saved bf16 weights (buffers such as
    # the rotary inv_freq are then computed in float32, not rounded to bf16)
    model = LlavaNextVideoForConditionalGeneration.from_pretrained(dst, torch_dtype=torch.float32).eval()
    return model, proc, ref


def main():
    frames = load_file(os.path.join(ROOT, "reference", "tiny-a", "video8_mjpeg", "reference.safetensors"))
    image = load_file(os.path.join(ROOT, "reference", "tiny-a", "image_jpeg_50x130",
                                   "reference.safetensors"))["image_rgb24"]
    model, proc, ref = make("tiny-b", config_b, SRC, True)
    run_case(model, proc, ref, "video6_mjpeg", "What is going on here?", video=frames["video_frames_rgb24"][:6])
    run_case(model, proc, ref, "image_jpeg_50x130", "Describe the picture.", image=image)
    run_case(model, proc, ref, "text_past_limit", " ".join(["The quick brown fox jumps over the lazy dog."] * 30))
    model, proc, ref = make("tiny-c", config_c, os.path.join(ROOT, "tokenizer", "mistral"), False)
    run_case(model, proc, ref, "video8_mjpeg", "What is going on here?", video=frames["video_frames_rgb24"])
    run_case(model, proc, ref, "image_jpeg_50x130", "Describe the picture.", image=image)
    run_case(model, proc, ref, "text_sliding_window", " ".join(["A small boat sails across the quiet bay."] * 12))


if __name__ == "__main__":
    sys.exit(main())
