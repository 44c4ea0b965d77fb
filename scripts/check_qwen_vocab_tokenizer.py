#!/usr/bin/env python3
"""Developer check (not run by the tests): the library's byte-level BPE against Hugging Face
`tokenizers` at the real Qwen vocabulary size. The Qwen BPE ranks (151 643 tokens, the
vocabulary Qwen2 uses) ship as `dashscope/resources/qwen.tiktoken` in the `dashscope` wheel on
PyPI; this script turns them into a tokenizer.json serialised like tests/data/tiny-ov's (NFC, the
Qwen2 split regex, ByteLevel, merges derived from the ranks as transformers' TikTokenConverter
does, ChatML specials at 151643.. and <image>/<video>), then encodes and decodes about 3000 texts
(the tokenizer corpora, the docs, sources, random mixes of scripts, emoji, combining marks and
white space) both ways and counts mismatches.

  pip download dashscope --no-deps -d /tmp/w && unzip -o /tmp/w/dashscope-*.whl \\
      dashscope/resources/qwen.tiktoken -d /tmp/w
  python3 scripts/check_qwen_vocab_tokenizer.py /tmp/w/dashscope/resources/qwen.tiktoken /tmp/qwen-model
(needs `tokenizers` and a built library: LD_LIBRARY_PATH=build/lib)."""
import base64
import glob
import json
import os
import random
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "bindings", "python", "src"))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build(tiktoken_path, out_dir):
    be = bytes_to_unicode()
    ranks = {}
    with open(tiktoken_path, "rb") as f:
        for line in f:
            if line.strip():
                tok, r = line.split()
                ranks[base64.b64decode(tok)] = int(r)
    s = lambda b: "".join(be[x] for x in b)
    merges = []
    for t, r in ranks.items():
        if len(t) > 1:
            loc = [(t[:i], t[i:], r) for i in range(1, len(t)) if t[:i] in ranks and t[i:] in ranks]
            merges.extend(sorted(loc, key=lambda x: (ranks[x[0]], ranks[x[1]])))
    merges.sort(key=lambda x: x[2])
    tiny = os.path.join(ROOT, "tests", "data", "tiny-ov")
    j = json.load(open(os.path.join(tiny, "tokenizer.json"), encoding="utf-8"))
    j["model"]["vocab"] = {s(t): r for t, r in ranks.items()}
    j["model"]["merges"] = [s(a) + " " + s(b) for a, b, _ in merges]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    for a in j["added_tokens"]:
        a["id"] = len(ranks) + specials.index(a["content"])
    os.makedirs(out_dir, exist_ok=True)
    json.dump(j, open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    for f in ["tokenizer_config.json", "chat_template.json", "preprocessor_config.json", "generation_config.json"]:
        shutil.copy(os.path.join(tiny, f), out_dir)
    c = json.load(open(os.path.join(tiny, "config.json")))
    c["text_config"].update(vocab_size=152000, bos_token_id=151643, eos_token_id=151645)
    c.update(image_token_index=151646, video_token_index=151647)
    json.dump(c, open(os.path.join(out_dir, "config.json"), "w"))


def corpus():
    texts = []
    d = os.path.join(ROOT, "tests", "data", "tokenizer")
    for f in ["qwen2-tiny-cases.json", "llama2-cases.json", "mistral-cases.json"]:
        texts += [c["text"] for c in json.load(open(os.path.join(d, f), encoding="utf-8"))["cases"]]
    files = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + sorted(glob.glob(os.path.join(ROOT, "lib", "text", "*.c")))
    texts += [open(f, encoding="utf-8").read() for f in files]
    rng = random.Random(1234)
    pools = ["abcXYZ", "0123456789", " \t\n\r\u00a0\u3000\u2009\u200b\u2028\u0085", "視頻猫が日本語한국어",
             "😀🎉👍🏽❤️👨‍👩‍👧🚀", "e\u0301a\u0308\u0327", "'sTRE'vell'd", ".,;:!?-_()[]{}<>/\\\"'`~@#$%^&*+=|",
             "αβγδΩЖжЯ", "مرحبا", "\u0e01\u0e32\u0e23", "ﬁ①Ⅻ²"]
    for _ in range(3000):
        texts.append("".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 40))))
    return texts + ["<|im_start|>user\nHi<|im_end|>\n", "a<image>b<video>\n", "<|endoftext|><|endoftext|>"]


def main():
    tiktoken_path, out_dir = sys.argv[1], sys.argv[2]
    build(tiktoken_path, out_dir)
    import llavanext as L
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    m = L.Model(out_dir, load_mode=L.LoadMode.NO_WEIGHTS)
    texts, bad = corpus(), 0
    for t in texts:
        want = hf.encode(t, add_special_tokens=True).ids
        got = list(m.tokenize(t, add_bos=True))
        if got != want or m.detokenize(got, skip_special=False) != hf.decode(want, skip_special_tokens=False):
            bad += 1
            if bad <= 5:
                print("mismatch:", repr(t[:80]))
    print("%d texts, %d characters, vocabulary %d: %d mismatches" % (len(texts), sum(map(len, texts)),
                                                                      hf.get_vocab_size(), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
