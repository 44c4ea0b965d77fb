#!/usr/bin/env python3
"""Answers a question about a video greedily and prints only the answer.

    python3 bindings/python/examples/ask.py --model DIR --video FILE --frames 8 \
        --prompt "Why is this video funny?" --max-tokens 24
"""

import argparse
import os
import sys

try:
    import llavanext
except ImportError:  # not installed: use the package next to this example
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import llavanext


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint directory")
    ap.add_argument("--video", required=True, help="video file")
    ap.add_argument("--frames", type=int, default=8, help="frames sampled uniformly (8)")
    ap.add_argument("--prompt", required=True, help="the question")
    ap.add_argument("--max-tokens", type=int, default=0, help="most tokens to generate")
    args = ap.parse_args()

    try:
        with llavanext.Model(args.model) as model, \
                llavanext.FrameSampler(args.video) as sampler, \
                llavanext.VisionEncoder(model) as encoder, \
                llavanext.Pooler(model) as pooler, \
                llavanext.Generator(model, temperature=0.0,
                                    max_new_tokens=args.max_tokens) as generator:
            with sampler.uniform(args.frames) as frames, \
                    encoder.encode_video(frames) as features, \
                    pooler.apply(features) as embeddings:
                prompt = model.render_chat([{"role": "user", "content": [
                    {"type": "video"}, {"type": "text", "text": args.prompt}]}])
                generator.append_prompt(prompt, [embeddings])
            for piece in generator:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
    except (llavanext.LlavaNextError, llavanext.LibraryNotFound) as e:
        print("ask: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
