#!/bin/sh
# Side by side with llama.cpp on this machine, at Llama-2-7B geometry with random weights:
# llama-bench in Q8_0 and Q4_K_M (weights read into memory, not mmapped; 2 threads by default)
# next to llavanext-bench --weights q8 / q4 (prefill and decode stages at the same depths).
# Not run by CI: it downloads and builds llama.cpp and writes ~25 GB of model files.
#
#   bench/compare_llamacpp.sh [BUILD_DIR]
#
# Environment: WORK (default /tmp/lnx-llamacpp; everything is written there), THREADS (2),
# LLAMA_CPP_REPO (https://github.com/ggml-org/llama.cpp), LLAMA_CPP_REF (a tag or commit; default
# the repository's default branch), LAYERS (llavanext-bench --layers, default 2: its full-depth
# column extrapolates to 32 layers), KEEP=1 keeps the model files.
#
# Needs git, cmake, a C/C++ compiler, Python 3 with numpy. The GGUF files are made with the
# gguf-py package of the fetched llama.cpp tree: an f16 model of random N(0, 0.02) weights with a
# placeholder 32000-token vocabulary, quantized by llama-quantize.
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-/tmp/lnx-llamacpp}
threads=${THREADS:-2}
layers=${LAYERS:-2}
repo=${LLAMA_CPP_REPO:-https://github.com/ggml-org/llama.cpp}
src=$work/llama.cpp

mkdir -p "$work"
if [ ! -d "$src/.git" ]; then
    git clone --depth 1 ${LLAMA_CPP_REF:+--branch "$LLAMA_CPP_REF"} "$repo" "$src"
fi
echo "llama.cpp $(git -C "$src" rev-parse --short HEAD)"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$src/build" --target llama-bench llama-quantize -j "$threads" >/dev/null
bin=$src/build/bin

f16=$work/llama2-7b-random-f16.gguf
if [ ! -f "$f16" ]; then
    echo "writing $f16 (random weights) ..."
    PYTHONPATH=$src/gguf-py python3 - "$f16" <<'EOF'
import sys

import numpy as np
import gguf

path = sys.argv[1]
n_vocab, n_embd, n_ff, n_layer, n_head = 32000, 4096, 11008, 32, 32
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
    out=$work/llama2-7b-random-$q.gguf
    [ -f "$out" ] || "$bin/llama-quantize" "$f16" "$out" "$q" "$threads" >/dev/null
done

echo
echo "== llama.cpp: llama-bench, $threads threads, no mmap (prompt processing 512 tokens; 64 generated"
echo "   tokens after 0, 1152 and 4608 positions of context)"
for q in Q8_0 Q4_K_M; do
    "$bin/llama-bench" -m "$work/llama2-7b-random-$q.gguf" -t "$threads" -mmp 0 -p 512 -n 64 \
        -d 0,1152,4608 -o md
done

echo
echo "== libllavanext: llavanext-bench --layers $layers ($threads threads; full-depth columns extrapolate to 32 layers)"
for w in q8 q4; do
    OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} "$build/bench/llavanext-bench" --weights "$w" \
        --layers "$layers" --threads "$threads" --runs 3 --stages prefill_1152,decode_1152,decode_4608
done

if [ "${KEEP:-0}" != 1 ]; then
    rm -f "$work"/llama2-7b-random-*.gguf
fi
