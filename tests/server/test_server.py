"""llavanext-server driven by the official `openai` client and by raw HTTP, on 127.0.0.1 only:
answers equal to llavanext-cli's greedy ones, streaming equal to non-streaming, concurrency on
two slots, the embedding cache (hit, persistence, a damaged entry), every kind of bad input, the
queue limit, and clients that disconnect."""
import base64
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

SERVER = os.environ.get("LLAVANEXT_SERVER", "build/examples/llavanext-server")
CLI = os.environ.get("LLAVANEXT_CLI", "build/examples/llavanext-cli")
DATA = os.path.abspath(os.environ.get("LLAVANEXT_TEST_DATA", "tests/data"))
MODEL = os.path.join(DATA, "tiny-a")
MEDIA = os.path.join(DATA, "media")
VIDEO = "clip_h264_160x120_97f.mp4"
KEY = "test-key-3141"
HOST = "127.0.0.1"


class Server:
    def __init__(self, *args, model=MODEL, default_host=False):
        host = [] if default_host else ["--host", HOST]
        self.proc = subprocess.Popen([SERVER, "--model", model, *host, "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        assert self.port, "server did not start: " + "".join(self.log)
        # keep draining stderr so the server never blocks on a full pipe
        threading.Thread(target=lambda: [self.log.append(x) for x in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            assert self.proc.wait(timeout=30) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def request(self, method, path, body=None, headers=None, key=KEY, timeout=120):
        c = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def chat(self, req, **kw):
        status, data = self.request("POST", "/v1/chat/completions", req, **kw)
        return status, json.loads(data) if data else None

    def metrics(self):
        status, data = self.request("GET", "/metrics")
        assert status == 200
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def client(self):
        openai = pytest.importorskip("openai")
        return openai.OpenAI(base_url=f"http://{HOST}:{self.port}/v1", api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """A media root holding copies of the fixture media, and a file outside it."""
    base = tmp_path_factory.mktemp("srv")
    root = base / "media"
    root.mkdir()
    for name in os.listdir(MEDIA):
        shutil.copy(os.path.join(MEDIA, name), root / name)
    (base / "secret.mp4").write_bytes(open(os.path.join(MEDIA, VIDEO), "rb").read())
    os.symlink(base / "secret.mp4", root / "link-out.mp4")
    return base


@pytest.fixture(scope="module")
def server(roots):
    s = Server("--slots", "2", "--media-root", str(roots / "media"), "--cache-dir", str(roots / "cache"),
               "--api-key", KEY, "--max-body-bytes", str(4 << 20), "--max-media-bytes", str(1 << 20),
               "--max-frames", "32", "--max-tokens", "200", "--threads", "1")
    yield s
    s.stop()


def cli_answer(video, frames, prompt, max_tokens):
    r = subprocess.run([CLI, "run", "--model", MODEL, "--video", video, "--frames", str(frames), "--prompt", prompt,
                        "--temperature", "0", "--max-tokens", str(max_tokens), "--json", "--threads", "1"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def video_message(url, prompt):
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                         {"type": "text", "text": prompt}]}]


def data_url(name, mime="video/mp4"):
    return f"data:{mime};base64," + base64.b64encode(open(os.path.join(MEDIA, name), "rb").read()).decode()


def test_health_and_models(server):
    assert server.request("GET", "/health", key=None) == (200, b'{"status":"ok"}')
    status, data = server.request("GET", "/v1/models")
    assert status == 200
    assert json.loads(data)["data"][0]["id"] == "tiny-a"
    assert [m.id for m in server.client().models.list()] == ["tiny-a"]


def test_video_answer_equals_the_cli_greedy_answer(server, roots):
    want = cli_answer(os.path.join(MEDIA, VIDEO), 8, "What is happening in this video?", 40)
    client = server.client()
    urls = [str(roots / "media" / VIDEO), "file://" + str(roots / "media" / VIDEO), data_url(VIDEO)]
    for url in urls:
        r = client.chat.completions.create(model="tiny-a", messages=video_message(url, "What is happening in this video?"),
                                           temperature=0, max_tokens=40, extra_body={"num_frames": 8})
        assert r.choices[0].message.content == want["text"], url[:40]
        assert r.choices[0].finish_reason == ("length" if len(want["generated_ids"]) == 40 else "stop")
        assert r.usage.completion_tokens == len(want["generated_ids"])
        assert r.usage.prompt_tokens == want["prompt_tokens"]
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        assert r.usage.model_extra["video_tokens"] == 8 * 4  # 8 frames x 4 tokens
    # llama.cpp's input_video part (raw base64) gives the same answer
    b64 = base64.b64encode(open(os.path.join(MEDIA, VIDEO), "rb").read()).decode()
    status, out = server.chat({"messages": [{"role": "user", "content": [
        {"type": "input_video", "input_video": {"data": b64, "format": "mp4"}},
        {"type": "text", "text": "What is happening in this video?"}]}], "temperature": 0, "max_tokens": 40})
    assert status == 200, out
    assert out["choices"][0]["message"]["content"] == want["text"]


def test_image_and_video_by_fps_answer_equals_the_cli(server, roots):
    r = subprocess.run([CLI, "run", "--model", MODEL, "--image", os.path.join(MEDIA, "image_50x130.jpg"),
                        "--video", os.path.join(MEDIA, "clip_h264_90x50_41f.mp4"), "--fps", "2",
                        "--prompt", "Compare them.", "--temperature", "0", "--max-tokens", "16", "--json"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    want = json.loads(r.stdout)
    status, out = server.chat({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url("image_50x130.jpg", "image/jpeg")}},
        {"type": "video_url", "video_url": {"url": str(roots / "media" / "clip_h264_90x50_41f.mp4")}},
        {"type": "text", "text": "Compare them."}]}], "fps": 2, "temperature": 0, "max_tokens": 16})
    assert status == 200, out
    assert out["choices"][0]["message"]["content"] == want["text"]
    assert out["usage"]["prompt_tokens"] == want["prompt_tokens"]
    assert out["usage"]["video_tokens"] == want["frames"] * 4  # 2 fps over the clip: 7 frames
    assert out["usage"]["image_tokens"] > 0


def test_streaming_equals_non_streaming(server, roots):
    client = server.client()
    msgs = video_message(str(roots / "media" / "clip_vp9_128x96_60f.webm"), "Describe the scene.")
    full = client.chat.completions.create(model="tiny-a", messages=msgs, temperature=0, max_tokens=30,
                                          extra_body={"num_frames": 6})
    pieces, finish, usage, chunks = [], None, None, 0
    for chunk in client.chat.completions.create(model="tiny-a", messages=msgs, temperature=0, max_tokens=30,
                                                extra_body={"num_frames": 6}, stream=True,
                                                stream_options={"include_usage": True}):
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
    assert chunks >= 3
    assert "".join(pieces) == full.choices[0].message.content
    assert finish == full.choices[0].finish_reason
    assert usage.completion_tokens == full.usage.completion_tokens
    assert usage.prompt_tokens == full.usage.prompt_tokens
    # the raw event stream: OpenAI chunk objects, ending with [DONE]
    c = http.client.HTTPConnection(HOST, server.port, timeout=60)
    c.request("POST", "/v1/chat/completions", body=json.dumps({"messages": msgs, "temperature": 0, "max_tokens": 30,
                                                              "num_frames": 6, "stream": True}),
              headers={"Authorization": "Bearer " + KEY})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    events = [e for e in r.read().decode().split("\n\n") if e]
    c.close()
    assert events[-1] == "data: [DONE]"
    objs = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert all(o["object"] == "chat.completion.chunk" for o in objs)
    assert "".join(o["choices"][0]["delta"].get("content", "") for o in objs) == full.choices[0].message.content


def test_stop_strings_end_the_answer_before_them(server, roots):
    msgs = video_message(str(roots / "media" / VIDEO), "What is happening in this video?")
    status, full = server.chat({"messages": msgs, "temperature": 0, "max_tokens": 40})
    text = full["choices"][0]["message"]["content"]
    stop = text[12:16]
    assert stop.strip() and text.find(stop) == 12
    status, out = server.chat({"messages": msgs, "temperature": 0, "max_tokens": 40, "stop": [stop, "@@never@@"]})
    assert status == 200
    assert out["choices"][0]["message"]["content"] == text[:12]
    assert out["choices"][0]["finish_reason"] == "stop"
    pieces = []
    for chunk in server.client().chat.completions.create(model="tiny-a", messages=msgs, temperature=0, max_tokens=40,
                                                         stop=stop, stream=True):
        pieces += [c.delta.content or "" for c in chunk.choices]
    assert "".join(pieces) == text[:12]


def test_eight_concurrent_requests_on_two_slots(server, roots):
    prompts = ["What happens?", "Who is there?", "Describe it.", "Count the objects."]
    jobs = [(prompts[i % 4], 4 + i % 2) for i in range(8)]
    want = {(p, f): cli_answer(os.path.join(MEDIA, "clip_h264_90x50_41f.mp4"), f, p, 24)["text"] for p, f in set(jobs)}
    client = server.client()

    def ask(job):
        p, f = job
        r = client.chat.completions.create(model="tiny-a", temperature=0, max_tokens=24, extra_body={"num_frames": f},
                                           messages=video_message(str(roots / "media" / "clip_h264_90x50_41f.mp4"), p))
        return r.choices[0].message.content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, jobs))
    for job, answer in zip(jobs, answers):
        assert answer == want[job], job
    # a slot counts as busy until its worker has handed the answer over and cleaned up
    m = wait_metric(server, "llavanext_slots_busy", 0)
    assert m["llavanext_slots"] == 2 and m["llavanext_queue_depth"] == 0
    assert m["llavanext_slots_busy_max"] == 2  # both slots ran requests at once


def test_second_question_about_a_video_skips_the_vision_stage(server, roots):
    url = str(roots / "media" / "clip_mjpeg_96x72_45f.avi")
    req = {"messages": video_message(url, "What is in the first frame?"), "temperature": 0, "max_tokens": 16,
           "num_frames": 7}
    before = server.metrics()
    status, first = server.chat(req)
    assert status == 200, first
    mid = server.metrics()
    req2 = dict(req, messages=video_message(url, "And in the last one?"))
    status, second = server.chat(req2)
    assert status == 200, second
    after = server.metrics()
    assert first["timings"]["cache_hits"] == 0 and first["timings"]["encode_s"] > 0
    assert second["timings"]["cache_hits"] == 1
    assert second["timings"]["encode_s"] == 0 and second["timings"]["sample_s"] == 0
    assert mid["llavanext_vision_encodes_total"] == before["llavanext_vision_encodes_total"] + 1
    assert after["llavanext_vision_encodes_total"] == mid["llavanext_vision_encodes_total"]
    assert after["llavanext_cache_hits_total"] == mid["llavanext_cache_hits_total"] + 1
    assert second["usage"]["video_tokens"] == first["usage"]["video_tokens"] == 7 * 4
    # the cached embeddings give the answer a fresh encode gives
    assert second["choices"][0]["message"]["content"] == \
        cli_answer(os.path.join(MEDIA, "clip_mjpeg_96x72_45f.avi"), 7, "And in the last one?", 16)["text"]
    # the same bytes sent inline hit the same entry (the key is the content, not the name)
    status, third = server.chat(dict(req, messages=video_message(data_url("clip_mjpeg_96x72_45f.avi", "video/x-msvideo"),
                                                                 "What is in the first frame?")))
    assert third["timings"]["cache_hits"] == 1
    assert third["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]


def test_cache_survives_a_restart_and_a_damaged_entry_is_recomputed(roots, tmp_path):
    cache = tmp_path / "cache"
    req = {"messages": video_message(data_url(VIDEO), "Tell me."), "temperature": 0, "max_tokens": 12, "num_frames": 3}
    s = Server("--cache-dir", str(cache), "--api-key", KEY, "--threads", "1")
    try:
        status, first = s.chat(req)
        assert status == 200 and first["timings"]["cache_hits"] == 0
    finally:
        s.stop()
    entries = [p for p in cache.iterdir() if p.suffix == ".safetensors"]
    assert len(entries) == 1
    s = Server("--cache-dir", str(cache), "--api-key", KEY, "--threads", "1")
    try:
        status, again = s.chat(req)
        assert again["timings"]["cache_hits"] == 1
        assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
        raw = bytearray(entries[0].read_bytes())
        raw[-3] ^= 0x20  # one float of the embeddings changed on disk
        entries[0].write_bytes(bytes(raw))
        status, fixed = s.chat(req)
        assert fixed["timings"]["cache_hits"] == 0  # not trusted: recomputed
        assert fixed["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
        m = s.metrics()
        assert m["llavanext_cache_corrupt_total"] == 1 and m["llavanext_vision_encodes_total"] == 1
        status, last = s.chat(req)
        assert last["timings"]["cache_hits"] == 1
    finally:
        s.stop()


def assert_error(status, body, want_status, code=None):
    assert status == want_status, body
    err = json.loads(body)["error"] if isinstance(body, (bytes, str)) else body["error"]
    assert err["message"] and err["type"]
    if code:
        assert err["code"] == code, err


def test_api_key_is_required(server):
    for headers, key in [({}, None), ({}, "wrong-key"), ({"Authorization": "Basic " + KEY}, None)]:
        for method, path in [("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/v1/chat/completions")]:
            status, body = server.request(method, path, body="{}" if method == "POST" else None, headers=headers,
                                          key=key)
            assert_error(status, body, 401, "invalid_api_key")
    openai = pytest.importorskip("openai")
    bad = openai.OpenAI(base_url=f"http://{HOST}:{server.port}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server, roots):
    good_video = {"type": "video_url", "video_url": {"url": str(roots / "media" / VIDEO)}}
    text = {"type": "text", "text": "hi"}

    def chat(body):
        return server.request("POST", "/v1/chat/completions", body)

    def user(*parts, **extra):
        return dict({"messages": [{"role": "user", "content": list(parts)}], "max_tokens": 4}, **extra)

    cases = [
        ("{not json", 400, "invalid_json"),
        ("[1, 2]", 400, None),
        ({"messages": []}, 400, None),
        ({"messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        (user({"type": "audio_url", "audio_url": {"url": "x"}}), 400, "unsupported_content_type"),
        (user({"type": "video_url"}), 400, None),
        (user({"type": "video_url", "video_url": {"url": "data:video/mp4;base64," +
                                                  base64.b64encode(os.urandom(5000)).decode()}}, text),
         400, "invalid_media"),
        (user({"type": "video_url", "video_url": {"url": "data:video/mp4;base64,@@@not base64@@@"}}, text),
         400, "invalid_media"),
        (user({"type": "video_url", "video_url": {"url": "data:video/mp4,rawbytes"}}, text), 400, "invalid_media"),
        (user({"type": "image_url", "image_url": {"url": "data:image/png;base64," +
                                                  base64.b64encode(b"\x89PNG\r\n\x1a\nbroken").decode()}}, text),
         400, "invalid_media"),
        (user({"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}, text), 400,
         "unsupported_media_url"),
        (user({"type": "video_url", "video_url": {"url": "ftp://x/y"}}, text), 400, "unsupported_media_url"),
        (user({"type": "video_url", "video_url": {"url": "/etc/passwd"}}, text), 403, "media_path_not_allowed"),
        (user({"type": "video_url", "video_url": {"url": str(roots / "media" / ".." / "secret.mp4")}}, text), 403,
         "media_path_not_allowed"),
        (user({"type": "video_url", "video_url": {"url": "file://" + str(roots / "media" / "link-out.mp4")}}, text),
         403, "media_path_not_allowed"),
        (user({"type": "video_url", "video_url": {"url": str(roots / "media" / "missing.mp4")}}, text), 403,
         "media_path_not_allowed"),
        (user({"type": "video_url", "video_url": {"url": str(roots / "media")}}, text), 400, "invalid_media"),
        (user({"type": "video_url", "video_url": {"url": "data:video/mp4;base64," +
                                                  base64.b64encode(bytes(1 << 20) + b"x").decode()}}, text),
         413, "media_too_large"),
        (user(good_video, text, num_frames=33), 400, None),
        (user(good_video, text, num_frames=0), 400, None),
        (user(good_video, text, fps=-1), 400, None),
        (user(good_video, text, max_tokens=201), 400, None),
        (user(good_video, text, temperature=5), 400, None),
        (user(good_video, text, n=2), 400, None),
        (user(good_video, text, stop=["a", "b", "c", "d", "e"]), 400, None),
        (user(good_video, text, stream="yes"), 400, None),
        (user(*[good_video] * 9, text), 400, None),
        (user(good_video, {"type": "text", "text": "word " * 600}), 400, "context_length_exceeded"),
        (user(good_video, {"type": "text", "text": "two <video> placeholders"}), 400, None),
    ]
    for body, want, code in cases:
        status, data = chat(body if isinstance(body, str) else json.dumps(body))
        assert_error(status, data, want, code)
    # a body over --max-body-bytes is refused from its Content-Length, before it is sent
    sock = socket.create_connection((HOST, server.port), timeout=30)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                 b"\r\nExpect: 100-continue\r\nContent-Length: " + str(5 << 20).encode() + b"\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    sock.close()
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413")
    assert_error(413, body, 413, "request_too_large")
    # ... and so is one without a length that grows past it (chunked)
    sock = socket.create_connection((HOST, server.port), timeout=30)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                 b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = b"x" * 65536
    try:
        for _ in range(80):
            sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    except (BrokenPipeError, ConnectionResetError):
        pass  # or the server closes the connection on it
    sock.close()
    assert_error(*server.request("GET", "/v1/nothing"), 404)
    assert_error(*server.request("GET", "/v1/chat/completions"), 405)
    assert_error(*server.request("POST", "/v1/models", body="{}"), 405)
    # still serving, and a good request right after them is answered
    assert server.request("GET", "/health", key=None)[0] == 200
    status, out = server.chat(user(good_video, text))
    assert status == 200 and out["choices"][0]["message"]["content"]
    m = server.metrics()
    assert m['llavanext_http_requests_total{code="400"}'] >= 20
    assert m['llavanext_http_requests_total{code="403"}'] >= 4


@pytest.fixture()
def long_model(tmp_path):
    """tiny-a with a 32k context: its greedy answer runs on for 20000 tokens (~15 s) without EOS."""
    d = tmp_path / "long"
    d.mkdir()
    for name in os.listdir(MODEL):
        if name != "config.json":
            os.symlink(os.path.join(MODEL, name), d / name)
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    cfg["text_config"]["max_position_embeddings"] = 16384
    json.dump(cfg, open(d / "config.json", "w"))
    return str(d)


def wait_metric(s, name, value, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = s.metrics()
        if m.get(name) == value:
            return m
        time.sleep(0.05)
    raise AssertionError(f"{name} never became {value}: {s.metrics().get(name)}")


def open_request(port, body):
    sock = socket.create_connection((HOST, port), timeout=30)
    payload = json.dumps(body).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: " + str(len(payload)).encode() +
                 b"\r\n\r\n" + payload)
    return sock


def read_until_text(sock):
    """Reads a streaming response until a chunk with generated text has arrived."""
    got = b""
    while b'"content":"' not in got.split(b'"role":"assistant"', 1)[-1]:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return got


def test_full_queue_gets_503_and_disconnects_cancel_running_and_queued_requests(long_model):
    s = Server("--slots", "1", "--max-queue", "1", "--api-key", KEY, "--threads", "1", "--max-tokens", "20000",
               model=long_model)
    try:
        long_req = {"messages": video_message(data_url(VIDEO), "Go on."), "temperature": 0, "max_tokens": 20000,
                    "num_frames": 2}
        # A: a streaming request, read until text arrives, so that it is generating
        a = open_request(s.port, dict(long_req, stream=True))
        got = read_until_text(a)
        assert s.metrics()["llavanext_slots_busy"] == 1
        # B waits in the queue (its one place); C finds the queue full
        b = open_request(s.port, long_req)
        wait_metric(s, "llavanext_queue_depth", 1)
        status, body = s.chat({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 2})
        assert_error(status, json.dumps(body), 503, "queue_full")
        # B's client leaves while it waits, then A's while it generates: both are cancelled, and
        # the slot is free long before A's 20000 tokens (~15 s) could have been generated
        t0 = time.time()
        b.close()
        time.sleep(0.2)
        a.close()
        m = wait_metric(s, "llavanext_requests_cancelled_total", 2)
        wait_metric(s, "llavanext_slots_busy", 0)
        wait_metric(s, "llavanext_queue_depth", 0)
        assert time.time() - t0 < 10
        assert m['llavanext_tokens_total{kind="completion"}'] == 0  # neither finished
        assert m["llavanext_chat_completions_total"] == 0
        # the freed slot serves the next request
        status, out = s.chat({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3, "temperature": 0})
        assert status == 200 and out["usage"]["completion_tokens"] == 3
        # a non-streaming client that goes away while its answer is generated cancels it too
        sock = open_request(s.port, long_req)
        wait_metric(s, "llavanext_slots_busy", 1)
        time.sleep(0.3)
        sock.close()
        wait_metric(s, "llavanext_requests_cancelled_total", 3)
        wait_metric(s, "llavanext_slots_busy", 0)
    finally:
        s.stop()


def read_all(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_stopping_answers_waiting_clients_with_503(long_model):
    s = Server("--slots", "1", "--api-key", KEY, "--threads", "1", "--max-tokens", "20000", model=long_model)
    long_req = {"messages": [{"role": "user", "content": "Go on."}], "temperature": 0, "max_tokens": 20000}
    a = open_request(s.port, dict(long_req, stream=True))
    streamed = read_until_text(a)
    b = open_request(s.port, long_req)
    wait_metric(s, "llavanext_queue_depth", 1)
    t0 = time.time()
    s.proc.terminate()
    assert s.proc.wait(timeout=30) == 0
    assert time.time() - t0 < 10
    # the streaming client gets an error event and the end of the stream; the queued one a 503
    streamed = (streamed + read_all(a)).decode()
    assert '"code":"shutting_down"' in streamed and "data: [DONE]\n\n" in streamed
    assert streamed.endswith("\r\n0\r\n\r\n")  # the chunked body is properly ended
    queued = read_all(b).decode()
    assert queued.startswith("HTTP/1.1 503") and '"code":"shutting_down"' in queued
    a.close()
    b.close()


def test_binds_to_loopback_by_default():
    s = Server("--threads", "1", default_host=True)
    try:
        # the listening socket in /proc/net/tcp: local address 127.0.0.1, state LISTEN (0A)
        listening = [line.split()[1] for line in open("/proc/net/tcp").read().splitlines()[1:]
                     if line.split()[3] == "0A" and line.split()[1].endswith(":%04X" % s.port)]
        assert listening == ["0100007F:%04X" % s.port]
        # no key configured: requests need none
        assert s.request("GET", "/v1/models", key=None)[0] == 200
    finally:
        s.stop()


def test_sampling_with_a_seed_is_reproducible(server, roots):
    msgs = video_message(str(roots / "media" / VIDEO), "Say something.")
    answers = []
    for seed in [0, 0, 12345, 12345]:
        status, out = server.chat({"messages": msgs, "temperature": 1.0, "top_p": 0.9, "seed": seed, "max_tokens": 16})
        assert status == 200, out
        answers.append(out["choices"][0]["message"]["content"])
    assert answers[0] == answers[1] and answers[2] == answers[3]
    assert answers[0] != answers[2]


def test_server_and_cli_share_cache_entries(tmp_path):
    cache = str(tmp_path / "shared")
    video = os.path.join(MEDIA, "clip_h264_90x50_41f.mp4")
    r = subprocess.run([CLI, "run", "--model", MODEL, "--video", video, "--frames", "5", "--prompt", "Why?",
                        "--temperature", "0", "--max-tokens", "10", "--json", "--cache-dir", cache],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    want = json.loads(r.stdout)
    assert want["cache_hits"] == 0
    s = Server("--cache-dir", cache, "--api-key", KEY, "--threads", "1")
    try:
        status, out = s.chat({"messages": video_message(data_url("clip_h264_90x50_41f.mp4"), "Why?"), "num_frames": 5,
                              "temperature": 0, "max_tokens": 10})
        assert status == 200, out
        assert out["timings"]["cache_hits"] == 1  # the CLI's entry
        assert out["choices"][0]["message"]["content"] == want["text"]
        assert s.metrics()["llavanext_vision_encodes_total"] == 0
    finally:
        s.stop()
