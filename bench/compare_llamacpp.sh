#!/bin/sh
# Side by side with llama.cpp on this machine, at Llama-2-7B geometry (4096 hidden, 11008 FFN,
# 32 heads, 32000 vocabulary) with random weights: llama.cpp in Q8_0 and Q4_K_M (weights read into
# memory, not mmapped) next to llavanext-bench --weights q8 / q4, both with the same number of
# decoder layers (LAYERS, default 2; the head and embeddings are full size) and THREADS threads.
# Prompt processing of 1152 and 4608 tokens, and decode after them: llama-batched-bench times
# both parts of each run separately (-npp 1152,4608 -ntg 32 -npl 1: its TG time is 32 tokens
# decoded after the prompt; llama-bench of this vintage has no context-depth option).
# Not run by CI: it builds llama.cpp (fetched unless LLAMA_CPP_SRC names a tree) and writes the
# model files (about 0.5 GB per layer in f16; LAYERS=32 makes the whole 7B model, ~25 GB).
#
#   bench/compare_llamacpp.sh [BUILD_DIR]
#
# Environment: WORK (default /tmp/lnx-llamacpp; everything is written there), THREADS (2), LAYERS
# (2), REPS (repetitions on both sides, 3), LLAMA_CPP_SRC (an existing llama.cpp source tree; else
# LLAMA_CPP_REPO, default https://github.com/ggml-org/llama.cpp, is cloned at LLAMA_CPP_REF),
# KEEP=1 keeps the model files, ISA=avx512 builds llama.cpp with AVX-512 (VNNI, BF16) but without
# AMX (see below), ISA=avx2 compares at the AVX2 level: llama.cpp built for AVX2 only
# (GGML_NATIVE off, no AVX-512 or AVX-VNNI) and this library with LLAVANEXT_CPU_MASK=1 and
# DNNL_MAX_CPU_ISA=AVX2, plus its float32 prefill in the same run (the AVX2-only CPU's case).
#
# Needs git, cmake, a C/C++ compiler, Python 3 with numpy, sentencepiece and pyyaml (what the
# gguf-py package imports; pip install them). The GGUF files are made with the
# gguf-py package of the llama.cpp tree: an f16 model of random N(0, 0.02) weights with a
# placeholder 32000-token vocabulary, quantized by llama-quantize.
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-/tmp/lnx-llamacpp}
threads=${THREADS:-2}
layers=${LAYERS:-2}
reps=${REPS:-3}
repo=${LLAMA_CPP_REPO:-https://github.com/ggml-org/llama.cpp}
src=${LLAMA_CPP_SRC:-$work/llama.cpp}

mkdir -p "$work"
if [ ! -f "$src/CMakeLists.txt" ]; then
    git clone --depth 1 ${LLAMA_CPP_REF:+--branch "$LLAMA_CPP_REF"} "$repo" "$src"
fi
echo "llama.cpp $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '(no git)'); CPU: $(lscpu | sed -n 's/^Model name: *//p')"
isa=${ISA:-native}
case $isa in
native)
    bdir=$src/build
    isa_flags="-DGGML_NATIVE=ON"
    ;;
avx512)
    # every AVX-512 extension this library's kernels use, but no AMX: on a Xeon with AMX the
    # llama.cpp of llama-cpp-python 0.3.36 stopped with SIGILL on its first AMX tile instruction
    # (tilezero in tinygemm_kernel_amx, in a worker thread); the library here keeps its AMX
    bdir=$src/build-avx512
    isa_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
        -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
    ;;
avx2)
    bdir=$src/build-avx2
    isa_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
        -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF"
    export LLAVANEXT_CPU_MASK=1 DNNL_MAX_CPU_ISA=AVX2
    ;;
*)
    echo "ISA must be native, avx512 or avx2" >&2
    exit 2
    ;;
esac
# shellcheck disable=SC2086 # the flags are words
cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF $isa_flags \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$bdir" --target llama-batched-bench llama-quantize -j "$threads" >/dev/null
bin=$bdir/bin
echo "instruction set: $isa"

f16=$work/llama2-7b-geometry-${layers}l-random-f16.gguf
if [ ! -f "$f16" ]; then
    echo "writing $f16 (random weights) ..."
    PYTHONPATH=$src/gguf-py python3 - "$f16" "$layers" <<'EOF'
import sys

import numpy as np
import gguf

path = sys.argv[1]
n_vocab, n_embd, n_ff, n_layer, n_head = 32000, 4096, 11008, int(sys.argv[2]), 32
rng = np.random.default_rng(42)
w = gguf.GGUFWriter(path, "llama")
w.add_context_length(4096)
w.add_embedding_length(n_embd)
w.add_block_count(n_layer)
w.add_feed_forward_length(n_ff)
w.add_rope_dimension_count(n_embd // n_head)
w.add_head_count(n_head)
w.add_head_count_kv(n_head)
w.add_layer_norm_rms_eps(1e-5)
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
w.add_tokenizer_model("llama")
tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
tokens += [f"t{i}" for i in range(n_vocab - len(tokens))]
w.add_token_list(tokens)
w.add_token_scores([0.0] * n_vocab)
types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * (n_vocab - 259)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_unk_token_id(0)


def rand(rows, cols):
    return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)


w.add_tensor("token_embd.weight", rand(n_vocab, n_embd))
w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
w.add_tensor("output.weight", rand(n_vocab, n_embd))
for i in range(n_layer):
    p = f"blk.{i}."
    w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    for name in ["attn_q", "attn_k", "attn_v", "attn_output"]:
        w.add_tensor(p + name + ".weight", rand(n_embd, n_embd))
    w.add_tensor(p + "ffn_gate.weight", rand(n_ff, n_embd))
    w.add_tensor(p + "ffn_up.weight", rand(n_ff, n_embd))
    w.add_tensor(p + "ffn_down.weight", rand(n_embd, n_ff))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
EOF
fi
for q in Q8_0 Q4_K_M; do
    out=$work/llama2-7b-geometry-${layers}l-random-$q.gguf
    [ -f "$out" ] || "$bin/llama-quantize" "$f16" "$out" "$q" "$threads" >/dev/null
done

echo "== llama.cpp: llama-batched-bench, $threads threads, no mmap, $layers layers, $reps repetitions"
# weights read into memory: --no-mmap, or --load-mode none where a newer llama.cpp replaced it
nommap=--no-mmap
"$bin/llama-batched-bench" --help 2>&1 | grep -q -- '--no-mmap' || nommap="--load-mode none"
for q in Q8_0 Q4_K_M; do
    m=$work/llama2-7b-geometry-${layers}l-random-$q.gguf
    : >"$work/lcpp-$q.jsonl"
    r=0
    while [ "$r" -lt "$reps" ]; do
        # shellcheck disable=SC2086 # $nommap is one or two words
        "$bin/llama-batched-bench" -m "$m" -t "$threads" -tb "$threads" $nommap -c 4672 -b 2048 -ub 512 \
            -npp 1152,4608 -ntg 32 -npl 1 --output-format jsonl 2>/dev/null | grep '^{' >>"$work/lcpp-$q.jsonl"
        r=$((r + 1))
    done
done

echo "== libllavanext: llavanext-bench --layers $layers, $threads threads"
weights="q8 q4"
[ "$isa" = avx2 ] && weights="q8 q4 stored"
for w in $weights; do
    OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} "$build/bench/llavanext-bench" --weights "$w" --json \
        --layers "$layers" --threads "$threads" --runs "$reps" --no-ceilings \
        --stages prefill_1152,prefill_4608,decode_1152,decode_4608 >"$work/lnx-$w.json"
done
[ "$isa" = avx2 ] || rm -f "$work/lnx-stored.json" # only an AVX2 run has a float32 side

python3 - "$work" <<'EOF'
import json
import statistics
import sys

work = sys.argv[1]


def lcpp(q):
    """seconds, median over the repetitions: prefill of T tokens, and per token decoded after it"""
    runs = {}
    for line in open(f"{work}/lcpp-{q}.jsonl"):
        r = json.loads(line)
        runs.setdefault(f"prefill_{r['pp']}", []).append(r["t_pp"])
        runs.setdefault(f"decode_{r['pp']}", []).append(r["t_tg"] / r["tg"])
    return {k: statistics.median(v) for k, v in runs.items()}


def ours(w):
    j = json.load(open(f"{work}/lnx-{w}.json"))
    return {s["name"]: s["seconds"] for s in j["stages"]}


print(f"{'stage':14} {'llama.cpp':>12} {'libllavanext':>13}  {'speed-up':>8}   (seconds: prefill of T tokens, decode per token)")
for q, w in (("Q8_0", "q8"), ("Q4_K_M", "q4")):
    a, b = lcpp(q), ours(w)
    print(f"-- {q} vs {w}")
    for k in ("prefill_1152", "prefill_4608", "decode_1152", "decode_4608"):
        if k in a and k in b:
            print(f"{k:14} {a[k]:12.4f} {b[k]:13.4f}  {a[k] / b[k]:7.2f}x")
        elif k in a:
            print(f"{k:14} {a[k]:12.4f} {'-':>13}")
try:
    f32, q8 = ours("stored"), ours("q8")
except OSError:
    f32 = None
if f32:
    print("-- this library's q8 against its float32 path, same run")
    for k in ("prefill_1152", "prefill_4608", "decode_1152", "decode_4608"):
        if k in f32 and k in q8:
            print(f"{k:14} {f32[k]:12.4f} {q8[k]:13.4f}  {f32[k] / q8[k]:7.2f}x   (f32, q8)")
EOF

if [ "${KEEP:-0}" != 1 ]; then
    rm -f "$work"/llama2-7b-geometry-*-random-*.gguf
fi
