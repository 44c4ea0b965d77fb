"""llavanext.batch on Dask: two local worker processes over the fixture media and a broken file,
answers equal to llavanext-cli's greedy answers, reruns that do no work, runs killed half way
and resumed, and a running scheduler with its own workers (as on several machines)."""
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest

try:
    import distributed  # noqa: F401
except ImportError as e:  # a missing dependency fails the suite: scripts/setup.sh installs it
    raise ImportError("dask[distributed] is not installed for %s (scripts/setup.sh installs it "
                      "from PyPI): %s" % (sys.executable, e)) from e

from llavanext import batch

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
ROOT = os.path.dirname(os.path.dirname(SRC))
QUESTION = "What is happening in this video?"
MAX_TOKENS = 24
FRAMES = 8


def _cli_path():
    cli = os.environ.get("LLAVANEXT_CLI") or os.path.join(ROOT, "build", "examples",
                                                          "llavanext-cli")
    if not os.access(cli, os.X_OK):
        pytest.skip("llavanext-cli not found (set LLAVANEXT_CLI; meson sets it)")
    return cli


def _env():
    """The environment of subprocesses: this checkout's package, the library found as here."""
    import llavanext

    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["LLAVANEXT_LIBRARY"] = llavanext.library_path()
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    return env


@pytest.fixture(scope="module")
def media(data_dir):
    d = data_dir / "media"
    files = sorted(str(p) for p in d.iterdir() if p.is_file())
    assert len(files) >= 6
    return files


@pytest.fixture(scope="module")
def cli_answers(model_dir, media):
    """llavanext-cli's greedy answer for every fixture file: {path: (text, tokens, prompt)}."""
    cli = _cli_path()
    out = {}
    for path in media:
        kind = "--image" if path.endswith((".png", ".jpg")) else "--video"
        args = [cli, "run", "--model", str(model_dir), kind, path]
        if kind == "--video":
            args += ["--frames", str(FRAMES)]
        args += ["--prompt", QUESTION, "--max-tokens", str(MAX_TOKENS), "--temperature", "0",
                 "--json"]
        r = subprocess.run(args, capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        j = json.loads(r.stdout)
        out[path] = (j["text"], len(j["generated_ids"]), j["prompt_tokens"])
    return out


def _records(out):
    with open(out, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_answer(rec, cli_answers, source):
    text, tokens, prompt_tokens = cli_answers[source]
    assert rec["error"] is None, rec
    assert rec["answer"] == text, (rec["path"], source)
    assert rec["tokens"] == tokens
    assert rec["prompt_tokens"] == prompt_tokens
    assert rec["sha256"] == _sha(source)
    assert rec["question"] == QUESTION and rec["frames"] == FRAMES
    assert rec["max_tokens"] == MAX_TOKENS and rec["weights"] == "as-stored"
    assert rec["seconds"] >= 0 and rec["worker"]


# ---- two local workers, a broken file, reruns --------------------------------------------------

def test_two_local_workers_answer_like_the_cli(tmp_path, model_dir, media, cli_answers):
    broken = tmp_path / "broken.mp4"
    with open(media[0], "rb") as f:
        broken.write_bytes(f.read()[:3000])  # a cut MP4: no moov atom
    out = tmp_path / "results.jsonl"
    kwargs = dict(model=model_dir, prompt=QUESTION, out=out, frames=FRAMES,
                  max_tokens=MAX_TOKENS, progress=False)
    inputs = [os.path.dirname(media[0]), str(broken)]

    s = batch.run(inputs, workers=2, threads_per_worker=1, **kwargs)
    assert (s.total, s.skipped, s.submitted, s.answered, s.failed) == (7, 0, 7, 6, 1)
    assert not s.interrupted
    recs = _records(out)
    assert sorted(r["path"] for r in recs) == sorted(media + [str(broken)])
    by_path = {r["path"]: r for r in recs}
    for path in media:
        _check_answer(by_path[path], cli_answers, path)
    assert by_path[path]["frames_used"] in (1, FRAMES)
    bad = by_path[str(broken)]
    assert bad["answer"] is None and bad["tokens"] is None
    assert bad["error"].startswith("FormatError") and str(broken) in bad["error"]
    assert bad["sha256"] == _sha(broken) and bad["size"] == 3000
    # both worker processes answered files
    assert len({r["worker"] for r in recs}) == 2

    # a rerun does no work and leaves the output as it was
    before = out.read_bytes()
    again = batch.run(inputs, workers=2, **kwargs)
    assert (again.skipped, again.submitted, again.answered, again.failed) == (7, 0, 0, 0)
    assert out.read_bytes() == before

    # the same through the command line: nothing to do, exit 0
    r = subprocess.run([sys.executable, "-m", "llavanext.batch", "--model", str(model_dir),
                        "--prompt", QUESTION, "--out", str(out), "--frames", str(FRAMES),
                        "--max-tokens", str(MAX_TOKENS), "--workers", "2", *inputs],
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 answered, 0 failed, 7 skipped" in r.stderr
    assert out.read_bytes() == before

    # --retry-errors: only the failed file is tried again (and fails again)
    retry = batch.run(inputs, workers=1, retry_errors=True, **kwargs)
    assert (retry.skipped, retry.submitted, retry.answered, retry.failed) == (6, 1, 0, 1)
    recs = _records(out)
    assert len(recs) == 8 and recs[-1]["path"] == str(broken) and recs[-1]["error"]

    # the broken file is replaced by a good one: only it is answered again
    shutil.copyfile(media[0], broken)
    fixed = batch.run(inputs, workers=1, **kwargs)
    assert (fixed.skipped, fixed.submitted, fixed.answered, fixed.failed) == (6, 1, 1, 0)
    last = _records(out)[-1]
    assert last["path"] == str(broken)
    _check_answer(last, cli_answers, media[0])


# ---- killed half way, resumed ------------------------------------------------------------------

def _start(args, out):
    return subprocess.Popen([sys.executable, "-m", "llavanext.batch", *args, "--out", str(out)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _lines(out):
    try:
        with open(out, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_for_lines(proc, out, n, timeout=120):
    deadline = time.monotonic() + timeout
    while _lines(out) < n:
        assert proc.poll() is None, "the run ended before writing %d results: %s" % (
            n, proc.communicate()[1])
        assert time.monotonic() < deadline, "no %d results after %d s" % (n, timeout)
        time.sleep(0.01)


def _group_gone(pgid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_killed_and_interrupted_runs_resume_to_the_full_set_once(tmp_path, model_dir, media,
                                                                 cli_answers):
    # many names for the fixture files, so that a run can be stopped half way
    src = tmp_path / "videos"
    src.mkdir()
    source_of = {}
    for copy in range(10):
        for path in media:
            link = src / ("%02d-%s" % (copy, os.path.basename(path)))
            os.symlink(path, link)
            source_of[str(link)] = path
    total = len(source_of)
    out = tmp_path / "results.jsonl"
    args = ["--model", str(model_dir), "--prompt", QUESTION, "--frames", str(FRAMES),
            "--max-tokens", str(MAX_TOKENS), "--workers", "2", "--threads-per-worker", "1",
            str(src / "*")]

    # 1. the machine dies: SIGKILL to the driver and its workers after a few results
    p = _start(args, out)
    _wait_for_lines(p, out, 4)
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate(timeout=60)
    assert _group_gone(p.pid), "worker processes outlived the killed driver's group"
    first = _lines(out)
    assert 4 <= first < total
    with open(out, "ab") as f:  # and the last write was cut in the middle of a line
        f.write(b'{"path": "/cut/short", "answer": "inter')

    # 2. Ctrl-C (SIGINT to the whole foreground group, as a terminal sends it) half way
    p = _start(args, out)
    _wait_for_lines(p, out, first + 4)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "run the same command again" in err
    assert _group_gone(p.pid), "worker processes outlived an interrupted run"
    second = _lines(out)
    assert first + 4 <= second < total
    with open(out, "rb") as f:
        assert f.read().endswith(b"\n")

    # 3. the rest
    p = _start(args, out)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "%d answered, 0 failed, %d skipped" % (total - second, second) in err

    recs = _records(out)  # every line is whole JSON: the cut line was repaired away
    paths = [r["path"] for r in recs]
    assert len(paths) == total and set(paths) == set(source_of)  # each file exactly once
    for rec in recs:
        _check_answer(rec, cli_answers, source_of[rec["path"]])


# ---- a running scheduler and its own workers ---------------------------------------------------

def test_running_scheduler_and_workers(tmp_path, model_dir, media, cli_answers):
    env = _env()
    sched_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        deadline = time.monotonic() + 60
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert time.monotonic() < deadline and procs[0].poll() is None, "no scheduler"
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
             "--nthreads", "1", "--memory-limit", "0", "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            out = tmp_path / "results.jsonl"
            s = batch.run(media, scheduler=address, threads_per_worker=1, model=model_dir,
                          prompt=QUESTION, out=out, frames=FRAMES, max_tokens=MAX_TOKENS,
                          progress=False)
            assert (s.answered, s.failed) == (len(media), 0)
            recs = _records(out)
            assert sorted(r["path"] for r in recs) == sorted(media)
            for rec in recs:
                _check_answer(rec, cli_answers, rec["path"])
            # the job's model is released on the workers afterwards
            plugins = client.run(lambda dask_worker: list(dask_worker.plugins))
            assert len(plugins) == 2
            assert not any(n.startswith("llavanext") for names in plugins.values()
                           for n in names)
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# ---- the progress bar --------------------------------------------------------------------------

def test_progress_bar_on_a_terminal_only(tmp_path, model_dir, media):
    import fcntl
    import pty
    import struct
    import termios

    out = tmp_path / "results.jsonl"
    args = [sys.executable, "-m", "llavanext.batch", "--model", str(model_dir), "--prompt",
            QUESTION, "--out", str(out), "--max-tokens", str(MAX_TOKENS), "--workers", "1",
            "--threads-per-worker", "1", *media[:3]]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    p = subprocess.Popen(args, env=_env(), stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(timeout=120) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "llavanext.batch: 100%" in screen and "3/3" in screen, screen

    # not a terminal: no bar, only the summary
    out.unlink()
    r = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "%|" not in r.stderr and "3 answered, 0 failed, 0 skipped" in r.stderr


# ---- arguments, inputs, the output file --------------------------------------------------------

def test_expand_inputs(tmp_path, media):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.webm", "notes.txt"):
        (d / name).write_bytes(b"x")
    got = batch.expand_inputs([str(d), str(d / "*.mp4"), str(tmp_path / "missing.avi")])
    assert got == [str(d / "a.mp4"), str(d / "sub" / "b.webm"), str(tmp_path / "missing.avi")]
    assert batch.expand_inputs([str(d / "**" / "*.webm")]) == [str(d / "sub" / "b.webm")]
    with pytest.raises(ValueError, match="no file matches"):
        batch.expand_inputs([str(tmp_path / "*.mkv")])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no media here")
    with pytest.raises(ValueError, match="no media file"):
        batch.expand_inputs([str(tmp_path / "empty")])


def test_usage_errors(tmp_path, model_dir, media):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "llavanext.batch", *args], env=_env(),
                              capture_output=True, text=True, timeout=60)

    base = ["--model", str(model_dir), "--prompt", "Q", "--out", str(tmp_path / "r.jsonl")]
    r = cli(*base, "--weights", "q9", media[0])
    assert r.returncode == 2 and "as-stored" in r.stderr and "q8" in r.stderr
    r = cli(*base, "--scheduler", "tcp://127.0.0.1:1", "--workers", "2", media[0])
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = cli(*base, "--frames", "0", media[0])
    assert r.returncode == 2 and "frames" in r.stderr
    r = cli("--model", str(model_dir), "--prompt", "Q", media[0])
    assert r.returncode == 2 and "--out" in r.stderr
    assert not (tmp_path / "r.jsonl").exists()
    r = cli(*base, str(tmp_path / "*.nothing"))
    assert r.returncode == 2 and "no file matches" in r.stderr


def test_missing_model_stops_the_job_and_records_nothing(tmp_path, media):
    out = tmp_path / "r.jsonl"
    with pytest.raises(RuntimeError, match="no-such-model"):
        batch.run(media[:2], model=tmp_path / "no-such-model", prompt="Q", out=out, workers=1,
                  progress=False)
    assert out.read_bytes() == b""


def test_one_writer_per_output_and_cut_lines(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(b'{"path": "/a", "answer": "x"}\n{"path": "/b", "ans')
    first = batch._Output(out)
    try:
        assert first.repaired == len(b'{"path": "/b", "ans')
        assert out.read_bytes() == b'{"path": "/a", "answer": "x"}\n'
        with pytest.raises(RuntimeError, match="another llavanext.batch run"):
            batch._Output(out)
        first.append({"path": "/c", "answer": "y"})
    finally:
        first.close()
    assert [r["path"] for r in batch.read_results(out)] == ["/a", "/c"]


def test_worker_plugin_loads_once_answers_and_frees(model_dir, media, cli_answers):
    from distributed.diagnostics.plugin import WorkerPlugin

    config = dict(model=str(model_dir), question=QUESTION, frames=FRAMES, max_tokens=MAX_TOKENS,
                  weights="as-stored", load_mode="read", threads=1)
    plugin = batch._make_plugin(config)
    assert isinstance(plugin, WorkerPlugin)
    shipped = pickle.loads(pickle.dumps(plugin))  # what the scheduler sends to each worker
    assert shipped.config == config and shipped._handles is None
    shipped.setup(worker=None)
    model = shipped._handles[0]
    assert not model.closed
    for path in media[:2]:
        rec = shipped.answer(path, "w")
        assert rec["path"] == path and rec["worker"] == "w"
        _check_answer(rec, cli_answers, path)
    assert shipped._handles[0] is model  # loaded once
    shipped.teardown(worker=None)
    assert shipped._handles is None and model.closed
