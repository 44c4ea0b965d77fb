#!/usr/bin/env python3
"""The stages of llavanext-bench in PyTorch (CPU), float32 and bfloat16, at the same geometry and
with the same method (random weights, --layers N truncation, per-layer time = N-layer run minus
0-layer run, extrapolated to 23 vision and 32 text layers, median of --runs after one warm-up),
printed side by side with llavanext-bench's JSON as ratios.

Not part of the build or CI. Needs torch (the CPU wheel is enough), e.g. in a venv:

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    build/bench/llavanext-bench --layers 1 --json > ours-f32.json
    build/bench/llavanext-bench --layers 1 --precision bf16 --json > ours-bf16.json
    /tmp/torchvenv/bin/python bench/compare_torch.py --layers 1 --ours ours-f32.json --ours-bf16 ours-bf16.json

The vision stage includes the Hugging Face processor's work per frame as the reference pipeline
does it (Pillow bicubic resize of a 1280x720 frame to the shortest edge 336, centre crop, rescale
and normalise in numpy; --no-preprocess leaves it out and starts from pixel values), as
llavanext-bench's vision stage includes ours. The frame sampling has no torch counterpart.
"""
import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

try:
    from PIL import Image
except ImportError:  # preprocessing is then left out (say so with --no-preprocess)
    Image = None

# CLIP ViT-L/14-336 and Llama-2-7B (LLaVA-NeXT-Video-7B)
V_HIDDEN, V_HEADS, V_INTER, V_LAYERS_RUN, IMAGE, PATCH = 1024, 16, 4096, 23, 336, 14
T_HIDDEN, T_HEADS, T_INTER, T_LAYERS, VOCAB = 4096, 32, 11008, 32, 32064
CHUNK = 2048  # the generator's default prefill_chunk (--chunk)


SRC_W, SRC_H = 1280, 720  # the frame size llavanext-bench feeds its vision stage
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def preprocess(frames, dtype):
    """CLIPImageProcessor's steps: shortest edge -> 336 (bicubic), centre crop 336, /255, normalise."""
    out = []
    for fr in frames:
        im = Image.fromarray(fr)
        w, h = im.size
        s = IMAGE / min(w, h)
        im = im.resize((round(w * s), round(h * s)), Image.BICUBIC)
        l, t = (im.size[0] - IMAGE) // 2, (im.size[1] - IMAGE) // 2
        im = im.crop((l, t, l + IMAGE, t + IMAGE))
        x = (np.asarray(im, dtype=np.float32) * (1 / 255.0) - MEAN) / STD
        out.append(torch.from_numpy(x.transpose(2, 0, 1).copy()))
    return torch.stack(out).to(dtype)


def rand(*shape, dtype):
    return (torch.rand(*shape, dtype=torch.float32) * 2 - 1).mul_(0.035).to(dtype)


class Clip:
    def __init__(self, layers, dtype):
        D, I = V_HIDDEN, V_INTER
        self.patch = rand(D, 3 * PATCH * PATCH, dtype=dtype)
        self.pos = rand((IMAGE // PATCH) ** 2 + 1, D, dtype=dtype)
        self.cls = rand(D, dtype=dtype)
        self.layers = []
        for _ in range(layers):
            self.layers.append({
                "qkv": rand(3 * D, D, dtype=dtype), "qkv_b": rand(3 * D, dtype=dtype),
                "o": rand(D, D, dtype=dtype), "o_b": rand(D, dtype=dtype),
                "fc1": rand(I, D, dtype=dtype), "fc1_b": rand(I, dtype=dtype),
                "fc2": rand(D, I, dtype=dtype), "fc2_b": rand(D, dtype=dtype),
                "ln1": torch.ones(D, dtype=dtype), "ln2": torch.ones(D, dtype=dtype),
            })
        self.p1 = rand(T_HIDDEN, D, dtype=dtype)
        self.p2 = rand(T_HIDDEN, T_HIDDEN, dtype=dtype)

    def forward(self, pixels, layers):
        Fr = pixels.shape[0]
        g = IMAGE // PATCH
        cols = pixels.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # F,3,g,g,P,P
        cols = cols.permute(0, 2, 3, 1, 4, 5).reshape(Fr, g * g, -1)
        x = cols @ self.patch.T
        x = torch.cat([self.cls.expand(Fr, 1, -1), x], 1) + self.pos
        x = F.layer_norm(x, (V_HIDDEN,))
        T, H, hd = x.shape[1], V_HEADS, V_HIDDEN // V_HEADS
        for L in self.layers[:layers]:
            h = F.layer_norm(x, (V_HIDDEN,), L["ln1"])
            q, k, v = F.linear(h, L["qkv"], L["qkv_b"]).split(V_HIDDEN, -1)
            q, k, v = (t.view(Fr, T, H, hd).transpose(1, 2) for t in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(Fr, T, V_HIDDEN)
            x = x + F.linear(a, L["o"], L["o_b"])
            h = F.layer_norm(x, (V_HIDDEN,), L["ln2"])
            h = F.linear(h, L["fc1"], L["fc1_b"])
            x = x + F.linear(h * torch.sigmoid(1.702 * h), L["fc2"], L["fc2_b"])
        feats = x[:, 1:].reshape(Fr, g, g, V_HIDDEN).permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(feats, 2).flatten(2).transpose(1, 2)
        return F.linear(F.gelu(F.linear(pooled, self.p1)), self.p2)


class Llama:
    def __init__(self, layers, dtype):
        D, I = T_HIDDEN, T_INTER
        self.layers = [{
            "qkv": rand(3 * D, D, dtype=dtype), "o": rand(D, D, dtype=dtype),
            "gu": rand(2 * I, D, dtype=dtype), "down": rand(D, I, dtype=dtype),
            "n1": torch.ones(D, dtype=dtype), "n2": torch.ones(D, dtype=dtype),
        } for _ in range(layers)]
        self.head = rand(VOCAB, D, dtype=dtype)
        self.norm = torch.ones(D, dtype=dtype)
        hd = D // T_HEADS
        self.inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd)) / 2.0

    def rope(self, x, pos0):
        T, hd = x.shape[-2], x.shape[-1]
        t = torch.arange(pos0, pos0 + T).float()
        ang = torch.outer(t, self.inv_freq)
        cos, sin = torch.cat([ang.cos()] * 2, -1).to(x.dtype), torch.cat([ang.sin()] * 2, -1).to(x.dtype)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    @staticmethod
    def rms(x, w):
        return w * (x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype))

    def forward(self, x, cache, pos0, layers):
        T, H, hd = x.shape[0], T_HEADS, T_HIDDEN // T_HEADS
        for li, L in enumerate(self.layers[:layers]):
            h = self.rms(x, L["n1"])
            q, k, v = F.linear(h, L["qkv"]).split(T_HIDDEN, -1)
            q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in (q, k, v))
            q, k = self.rope(q, pos0), self.rope(k, pos0)
            kc, vc = cache[li]
            kc[:, pos0:pos0 + T], vc[:, pos0:pos0 + T] = k, v
            K, V = kc[:, : pos0 + T], vc[:, : pos0 + T]
            if T == 1:
                a = F.scaled_dot_product_attention(q, K, V)
            else:
                mask = torch.ones(T, pos0 + T, dtype=torch.bool).tril(pos0)
                a = F.scaled_dot_product_attention(q, K, V, attn_mask=mask)
            x = x + F.linear(a.transpose(0, 1).reshape(T, T_HIDDEN), L["o"])
            gate, up = F.linear(self.rms(x, L["n2"]), L["gu"]).split(T_INTER, -1)
            x = x + F.linear(F.silu(gate) * up, L["down"])
        return F.linear(self.rms(x[-1:], self.norm), self.head)


def timed(fn, runs):
    fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def stage(name, fn_layers, layers, full, runs, work_layer, work_fixed, unit):
    t_n = timed(lambda: fn_layers(layers), runs)
    t_0 = timed(lambda: fn_layers(0), runs)
    per = (t_n - t_0) / layers
    return {"name": name, "seconds": t_n, "seconds_per_layer": per, "full_seconds": t_0 + per * full,
            "work": work_fixed + work_layer * layers, "full_work": work_fixed + work_layer * full, "unit": unit}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=CHUNK, help="prefill block (llavanext-bench uses %d)" % CHUNK)
    ap.add_argument("--precision", choices=["f32", "bf16", "both"], default="both")
    ap.add_argument("--ours", help="llavanext-bench --json output (f32) to compare with")
    ap.add_argument("--ours-bf16", help="llavanext-bench --precision bf16 --json output")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-preprocess", action="store_true", help="vision starts from pixel values")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "layers": a.layers, "stages": {}}
    precisions = ["f32", "bf16"] if a.precision == "both" else [a.precision]
    for prec in precisions:
        dt = torch.float32 if prec == "f32" else torch.bfloat16
        rows = []
        with torch.inference_mode():
            clip = Clip(a.layers, dt)
            vt = (IMAGE // PATCH) ** 2 + 1
            pre = Image is not None and not a.no_preprocess
            results["vision_preprocess"] = pre
            for Fr in (1, 8, 32):
                rng = np.random.default_rng(Fr)
                frames = rng.integers(0, 256, (Fr, SRC_H, SRC_W, 3), dtype=np.uint8)
                px = torch.randn(Fr, 3, IMAGE, IMAGE).to(dt)

                def vis(n, px=px, frames=frames):
                    for f0 in range(0, Fr, 8):
                        batch = preprocess(frames[f0:f0 + 8], dt) if pre else px[f0:f0 + 8]
                        clip.forward(batch, n)
                D, I = V_HIDDEN, V_INTER
                wl = Fr * (2.0 * vt * (4 * D * D + 2 * D * I) + 4.0 * vt * vt * D)
                wf = Fr * (2.0 * (vt - 1) * 3 * PATCH * PATCH * D + 2.0 * (vt - 1) / 4 * (D * T_HIDDEN + T_HIDDEN ** 2))
                rows.append(stage(f"vision_f{Fr}", vis, a.layers, V_LAYERS_RUN, a.runs, wl, wf, "FLOP"))
            del clip
            llama = Llama(a.layers, dt)
            hd = T_HIDDEN // T_HEADS
            lp = 4.0 * T_HIDDEN * T_HIDDEN + 3.0 * T_HIDDEN * T_INTER
            for T in (1152, 4608):
                cache = [(torch.zeros(T_HEADS, T + 1, hd, dtype=dt), torch.zeros(T_HEADS, T + 1, hd, dtype=dt))
                         for _ in range(a.layers)]
                x = rand(T, T_HIDDEN, dtype=dt)

                def pre(n, x=x, cache=cache, T=T):
                    for p0 in range(0, T, a.chunk):
                        llama.forward(x[p0:p0 + a.chunk], cache, p0, n)
                att = 4.0 * hd * T_HEADS * T * (T + 1) / 2
                rows.append(stage(f"prefill_{T}", pre, a.layers, T_LAYERS, a.runs, 2 * lp * T + att,
                                  2.0 * T_HIDDEN * VOCAB, "FLOP"))
                one = rand(1, T_HIDDEN, dtype=dt)
                es = 2 if dt == torch.bfloat16 else 4
                rows.append(stage(f"decode_{T}", lambda n, one=one, cache=cache, T=T: llama.forward(one, cache, T, n),
                                  a.layers, T_LAYERS, a.runs, lp * es + 2.0 * (T + 1) * T_HIDDEN * es,
                                  VOCAB * T_HIDDEN * es, "bytes"))
            del llama
        results["stages"][prec] = rows
    if a.json:
        print(json.dumps(results, indent=1))
        return
    ours = {}
    for prec, path in (("f32", a.ours), ("bf16", a.ours_bf16)):
        if path:
            with open(path) as f:
                ours[prec] = {s["name"]: s for s in json.load(f)["stages"]}
    print(f"torch {results['torch']}, {results['threads']} threads, {a.layers} layer(s) measured, "
          f"full depth extrapolated; median of {a.runs}; vision preprocessing "
          f"{'included' if results.get('vision_preprocess') else 'left out'}")
    print(f"{'stage':14} {'prec':5} {'torch s':>10} {'torch full s':>13} {'ours full s':>12} {'torch/ours':>11}")
    for prec, rows in results["stages"].items():
        for r in rows:
            o = ours.get(prec, {}).get(r["name"])
            of = o["full_seconds"] if o else math.nan
            print(f"{r['name']:14} {prec:5} {r['seconds']:10.4f} {r['full_seconds']:13.3f} {of:12.3f} "
                  f"{r['full_seconds'] / of if o else math.nan:11.2f}")


if __name__ == "__main__":
    main()
