"""What a real host does to the binding: fork after loading (multiprocessing's default start
method on Linux), read a handle's error on another thread, and collect libav's messages."""
import multiprocessing
import threading

import pytest

import llavanext as L

_STATE = {}


def _answer(state):
    """Frames -> encoder -> pooler -> greedy tokens, on the handles in `state`."""
    with state["sampler"].uniform(4) as picked, state["encoder"].encode_video(picked) as features:
        emb = state["pooler"].apply(features)
    g = state["generator"]
    g.reset()
    g.append_prompt(state["prompt"], [emb])
    return [t.id for t in g.tokens() if t.id >= 0]


def _child(queue):
    # the handles the parent made and used (their thread pools' workers stayed in the parent)
    queue.put(_answer(_STATE))


def test_forked_child_uses_the_library(model, video_path):
    prompt = model.render_chat([{"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": "What happens?"}]}], add_generation_prompt=True)
    _STATE.update(sampler=L.FrameSampler(video_path), encoder=L.VisionEncoder(model, threads=2),
                  pooler=L.Pooler(model), prompt=prompt,
                  generator=L.Generator(model, temperature=0.0, max_new_tokens=8, threads=2))
    try:
        want = _answer(_STATE)  # the parent's pools are running now
        ctx = multiprocessing.get_context("fork")
        for _ in range(2):
            queue = ctx.Queue()
            child = ctx.Process(target=_child, args=(queue,))
            child.start()
            child.join(120)
            if child.is_alive():
                child.kill()
                child.join()
                pytest.fail("the forked child hung")
            assert child.exitcode == 0
            assert queue.get(timeout=5) == want
            # the parent goes on with the same handles
            assert _answer(_STATE) == want
    finally:
        for k in ("sampler", "encoder", "pooler", "generator"):
            _STATE.pop(k).close()


def test_handle_error_read_on_another_thread(model):
    g = L.Generator(model, temperature=0.0)
    with pytest.raises(L.StateError) as info:
        g.prefill() if False else next(iter(g.tokens()))
    assert "nothing to continue from" in str(info.value)
    seen = {}
    t = threading.Thread(target=lambda: seen.update(msg=g.last_error(), thread=L.last_error()))
    t.start()
    t.join()
    assert "nothing to continue from" in seen["msg"]
    assert "nothing to continue from" not in seen["thread"]
    g.close()


def test_frame_sampler_log_receives_libav_messages(data_dir):
    messages = []
    with L.FrameSampler(data_dir / "media" / "clip_mjpeg_96x72_45f.avi",
                        log=lambda level, msg: messages.append((level, msg))) as s:
        with s.uniform(4):
            pass
    assert any(msg.startswith("libav: ") for _, msg in messages)
