"""Answer one question about many videos (or images) on a Dask cluster, resumably.

Command line::

    python -m llavanext.batch --model DIR --prompt TEXT --out results.jsonl \\
        [--frames N] [--max-tokens N] [--scheduler ADDR | --workers N] \\
        [--threads-per-worker N] [--weights as-stored|bf16|q8|q4] PATH_OR_GLOB...

and the same as a function, :func:`run`. Without ``--scheduler`` a Dask ``LocalCluster`` of
``--workers`` processes is started on this machine; with it, the work goes to a running
``distributed`` scheduler and its workers (``dask scheduler``, ``dask worker ADDR``), which must
reach the model directory and the media files under the same paths as this process.

Each worker loads the model once (a worker plugin) and answers its files one after another,
greedily, the way ``llavanext-cli run --temperature 0`` does: the same frames, prompt and
tokens. Every result is appended to the output as one JSON line as soon as it arrives (see
:data:`RECORD_FIELDS`); a file that fails is recorded with its error and the job goes on. A
rerun with the same output skips every file already recorded for the same model, question,
frames, token limit and weights whose size and modification time (or content) did not change,
so a run stopped by Ctrl-C, a crash or a lost machine is finished by running it again.

Exit status of the command: 0 all files answered, 3 the job finished but some files are recorded
as errors, 1 the job could not run (bad model, scheduler unreachable, another run writing the
same output), 2 usage error, 130 interrupted (Ctrl-C): rerun to go on.

Only the driver needs ``dask[distributed]`` (and ``tqdm`` for the progress bar); the workers need
``dask[distributed]`` and this package with the library. The driver never loads the library.
"""

import argparse
import dataclasses
import errno
import fcntl
import glob
import hashlib
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
import uuid

__all__ = ["RECORD_FIELDS", "Summary", "expand_inputs", "main", "read_results", "run"]

#: The fields of one JSON line of the output, in order. ``error`` is null for an answered file;
#: for a failed one ``answer`` and ``tokens`` are null and ``error`` says what went wrong.
RECORD_FIELDS = (
    "path",          # absolute path of the file, as this process names it
    "sha256",        # hex SHA-256 of the file's bytes (null if it could not be read)
    "size",          # bytes, and
    "mtime_ns",      # modification time, as the worker saw them
    "question",      # the prompt text
    "answer",        # the generated text
    "tokens",        # number of generated tokens
    "prompt_tokens", # tokens of the prompt including the visual tokens
    "frames",        # frames asked for (--frames)
    "frames_used",   # frames actually sampled (fewer for short videos; 1 for an image)
    "max_tokens",    # --max-tokens (null: the model's generation config, else 256)
    "weights",       # --weights
    "model",         # the model directory
    "seconds",       # wall time of this file on its worker (read, sample, encode, generate)
    "worker",        # the Dask worker that answered it
    "error",         # null, or "ErrorType: message"
)

#: What a directory argument contributes: files with these extensions, recursively.
MEDIA_EXTENSIONS = frozenset(
    ".3gp .asf .avi .flv .gif .jpeg .jpg .m2ts .m4v .mkv .mov .mp4 .mpeg .mpg .mts .ogv .png "
    ".ts .webm .webp .wmv .bmp .tif .tiff".split())

#: The --weights values this binding can pass on (more arrive with quantized weights).
AS_STORED = "as-stored"


def _usage(message):
    raise ValueError(message)


# ---- inputs and the output file --------------------------------------------------------------


def expand_inputs(patterns):
    """The files named by `patterns`, in order, without duplicates, as absolute paths.

    A pattern with glob characters (``*?[``) is expanded (``**`` recurses) to the regular files
    it matches; a directory gives its media files (MEDIA_EXTENSIONS), recursively; anything else
    is taken as a file path as is, even if it does not exist (it is then recorded as an error).
    A glob or directory that gives no file raises ValueError.
    """
    seen = set()
    out = []

    def add(path):
        path = os.path.abspath(path)
        if path not in seen:
            seen.add(path)
            out.append(path)

    for pattern in patterns:
        pattern = os.fspath(pattern)
        if glob.has_magic(pattern):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                _usage("no file matches %r" % pattern)
            for p in matches:
                add(p)
        elif os.path.isdir(pattern):
            found = []
            for root, dirs, files in os.walk(pattern):
                dirs.sort()
                for name in files:
                    if os.path.splitext(name)[1].lower() in MEDIA_EXTENSIONS:
                        found.append(os.path.join(root, name))
            if not found:
                _usage("no media file (%s) in directory %r"
                       % (" ".join(sorted(MEDIA_EXTENSIONS)), pattern))
            for p in sorted(found):
                add(p)
        else:
            add(pattern)
    return out


def _job_key(rec):
    return (rec.get("path"), rec.get("model"), rec.get("question"), rec.get("frames"),
            rec.get("max_tokens"), rec.get("weights"))


def read_results(out):
    """The records of an output file, in file order: a list of dicts. Lines that are not JSON
    objects (a line cut short by a crash) are left out."""
    records = []
    try:
        with open(out, "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    records.append(rec)
    except FileNotFoundError:
        pass
    return records


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Output:
    """The results file, locked against a second writer, appended one fsync'ed line at a time.
    A last line without its newline (the writer was killed in the middle of it) is cut off
    before anything is appended."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise FileNotFoundError(errno.ENOENT, "the output's directory does not exist", parent)
        self._f = open(self.path, "a+b")
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.close()
            raise RuntimeError("another llavanext.batch run is writing %s" % self.path) from None
        self._repair()

    def _repair(self):
        f = self._f
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # find the last newline: everything after it is a cut line
        pos = size
        keep = 0
        while pos > 0:
            step = min(pos, 1 << 16)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = pos + i + 1
                break
        f.truncate(keep)
        self.repaired = size - keep

    repaired = 0

    def append(self, rec):
        line = json.dumps({k: rec.get(k) for k in RECORD_FIELDS}, ensure_ascii=False)
        self._f.write(line.encode("utf-8") + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def _still_valid(rec, path):
    """Is a record of `path` still about the file as it is now?"""
    try:
        st = os.stat(path)
    except OSError:
        return rec.get("sha256") is None  # missing then and now
    if rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
        return True
    if rec.get("size") == st.st_size and rec.get("sha256"):
        try:
            return _sha256(path) == rec["sha256"]  # touched or copied, same bytes
        except OSError:
            return False
    return False


# ---- the worker side -------------------------------------------------------------------------


class _ModelNotLoaded(RuntimeError):
    """A worker could not load the model: the job stops (nothing is recorded for the file)."""


def _worker_plugin_base():
    from distributed.diagnostics.plugin import WorkerPlugin
    return WorkerPlugin


def _make_plugin(config):
    """A WorkerPlugin instance holding `config`; its class is built lazily so that importing
    this module does not need distributed."""
    cls = _plugin_class()
    return cls(config)


_PLUGIN_CLASS = None


def _plugin_class():
    global _PLUGIN_CLASS
    if _PLUGIN_CLASS is None:
        # _ModelState first: its setup/teardown must win over WorkerPlugin's empty ones
        _PLUGIN_CLASS = type("LlavaNextModelPlugin", (_ModelState, _worker_plugin_base()), {
            "__module__": __name__,
            "__doc__": _ModelState.__doc__,
        })
    return _PLUGIN_CLASS


def _rebuild_plugin(config):
    return _make_plugin(config)


class _ModelState:
    """Worker plugin: loads the model once per worker (setup), answers files one at a time
    (answer), and frees everything when the job unregisters it (teardown)."""

    def __init__(self, config):
        self.config = dict(config)
        self._lock = threading.Lock()
        self._handles = None

    def __reduce__(self):  # only the configuration travels; the handles are made on the worker
        return (_rebuild_plugin, (self.config,))

    # WorkerPlugin hooks
    def setup(self, worker=None):
        if self.config.get("local") and threading.current_thread() is threading.main_thread():
            # A worker process of the driver's own LocalCluster: Ctrl-C on the terminal reaches
            # it too, but stopping is the driver's business (it closes the cluster in order).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        with self._lock:
            self._load()

    def teardown(self, worker=None):
        with self._lock:
            handles, self._handles = self._handles, None
            if handles:
                for h in reversed(handles):
                    h.close()

    def _load(self):
        if self._handles is not None:
            return
        import llavanext as L

        _quiet_libav()
        c = self.config
        kwargs = {"load_mode": L.LoadMode.READ if c["load_mode"] == "read" else L.LoadMode.MMAP}
        if WEIGHTS[c["weights"]]:
            kwargs["weights"] = L.Weights(WEIGHTS[c["weights"]])
        threads = c["threads"]
        model = L.Model(c["model"], **kwargs)
        try:
            encoder = L.VisionEncoder(model, threads=threads)
            pooler = L.Pooler(model, threads=threads)
            generator = L.Generator(model, threads=threads, temperature=0.0,
                                    max_new_tokens=c["max_tokens"] or 0)
        except BaseException:
            model.close()
            raise
        self._handles = (model, encoder, pooler, generator)

    def answer(self, path, worker_name):
        """One file: returns its record (with `error` set when it failed)."""
        with self._lock:
            if self._handles is None:
                try:
                    self._load()  # a worker that joined after a failed setup tries once more
                except Exception as e:
                    raise _ModelNotLoaded("%s: cannot load the model %s: %s"
                                          % (worker_name, self.config["model"], e)) from e
            return self._answer(path, worker_name)

    def _answer(self, path, worker_name):
        c = self.config
        rec = {k: None for k in RECORD_FIELDS}
        rec.update(path=path, question=c["question"], frames=c["frames"],
                   max_tokens=c["max_tokens"], weights=c["weights"], model=c["model"],
                   worker=worker_name)
        t0 = time.perf_counter()
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                              "not a regular file", path)
            rec["size"], rec["mtime_ns"] = st.st_size, st.st_mtime_ns
            rec["sha256"] = _sha256(path)
            text, tokens, prompt_tokens, frames_used = self._generate(path)
            rec.update(answer=text, tokens=tokens, prompt_tokens=prompt_tokens,
                       frames_used=frames_used)
        except Exception as e:  # recorded; the job goes on
            rec["error"] = _describe(e)
        rec["seconds"] = round(time.perf_counter() - t0, 4)
        return rec

    def _generate(self, path):
        import llavanext as L

        model, encoder, pooler, generator = self._handles
        c = self.config
        with L.FrameSampler(path, threads=c["threads"]) as sampler:
            info = sampler.info()
            kind = "image" if info.is_image else "video"
            frames = 1 if info.is_image else min(c["frames"], info.frame_count)
            if frames < 1:
                raise ValueError("%s has no frames (frame count %d)" % (path, info.frame_count))
            prompt = model.render_chat([{"role": "user", "content": [
                {"type": kind}, {"type": "text", "text": c["question"]}]}])
            specials = (model.video_token_id, model.image_token_id)
            ids = model.tokenize(prompt)
            placeholders = sum(1 for i in ids if i in specials)
            if placeholders != 1:
                raise L.TemplateError(L.Status.E_TEMPLATE,
                                      "the chat template rendered %d media placeholders for one "
                                      "%s" % (placeholders, kind))
            text_tokens = len(ids) - placeholders
            image_tokens = model.image_tokens(info.height, info.width) if info.is_image else 0
            budget = model.plan_budget(0 if info.is_image else frames, image_tokens=image_tokens,
                                       text_tokens=text_tokens,
                                       max_new_tokens=c["max_tokens"] or 0)
            if not budget.fits:
                raise L.ContextFullError(
                    L.Status.E_CONTEXT_FULL,
                    "needs %d tokens but the context holds %d (try --frames %d)"
                    % (budget.total_tokens, budget.context_length, budget.suggested_frames))
            embeddings = self._embed(sampler, frames, info.is_image)
        try:
            generator.reset()
            generator.append_prompt(prompt, [embeddings])
            prompt_tokens = generator.position
            pieces = []
            count = 0
            for token in generator.tokens():
                pieces.append(token.piece)
                if token.id >= 0:
                    count += 1
            return "".join(pieces), count, prompt_tokens, frames
        finally:
            embeddings.close()
            generator.reset()

    def _embed(self, sampler, frames, is_image):
        """The visual embeddings, computed as llavanext-cli does: an image whole, a video in
        batches of 8 frames (sampled, encoded, pooled and projected batch by batch)."""
        import llavanext as L

        _, encoder, pooler, _ = self._handles
        if is_image:
            with sampler.uniform(1) as f, encoder.encode_image(f) as features:
                return pooler.apply(features)
        parts = []
        try:
            for batch in sampler.iter_uniform(frames, 8):
                with batch, encoder.encode_video(batch) as features, \
                        pooler.pool(features) as pooled:
                    parts.append(pooler.project(pooled))
            return L.Tensor.concat(parts)
        finally:
            for p in parts:
                p.close()


def _quiet_libav():
    """Keeps FFmpeg's warnings about individual files (deprecated pixel formats, ...) out of the
    worker's log, as llavanext-cli does: its errors still show. Best effort."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("avutil")
    if not name:
        return
    try:
        ctypes.CDLL(name).av_log_set_level(16)  # AV_LOG_ERROR
    except (OSError, AttributeError):
        pass


def _describe(e):
    return "%s: %s" % (type(e).__name__, e)


def _answer_task(plugin_name, path):
    """The Dask task: the named plugin of the worker running it answers `path`."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(plugin_name)
    if plugin is None:
        raise _ModelNotLoaded("worker %s has no model plugin %s" % (worker.address, plugin_name))
    return plugin.answer(path, worker.name if isinstance(worker.name, str) else worker.address)


# ---- the driver ------------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """What run() did."""

    total: int = 0          # files named by the inputs
    skipped: int = 0        # already in the output
    submitted: int = 0      # sent to the workers this run
    answered: int = 0       # recorded with an answer this run
    failed: int = 0         # recorded with an error this run
    seconds: float = 0.0    # wall time of the run
    interrupted: bool = False
    out: str = ""

    @property
    def remaining(self):
        return self.submitted - self.answered - self.failed


#: --weights values: as stored in the checkpoint, or converted on load (docs/quantization.md)
WEIGHTS = {"as-stored": 0, "stored": 0, "bf16": 1, "q8": 2, "q4": 3}


def _check_weights(weights):
    weights = weights or AS_STORED
    if weights not in WEIGHTS:
        _usage("--weights %s: expected one of %s" % (weights, ", ".join(WEIGHTS)))
    return weights


def _default_threads(workers):
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, workers))


class _Progress:
    def __init__(self, enabled, total, initial_note):
        self._bar = None
        if enabled and total:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True,
                                 desc="llavanext.batch")
                if initial_note:
                    self._bar.write(initial_note, file=sys.stderr)

    def update(self, failed_note=None):
        if self._bar is not None:
            if failed_note:
                self._bar.write(failed_note, file=sys.stderr)
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()


def run(inputs, *, model, prompt, out, frames=8, max_tokens=None, scheduler=None, workers=None,
        threads_per_worker=None, weights=AS_STORED, load_mode="mmap", retry_errors=False,
        progress=None, client=None):
    """Answers `prompt` about every file named by `inputs` and appends the records to `out`.

    inputs: paths, directories and glob patterns (see expand_inputs). model: the checkpoint
    directory, as the workers see it. frames: frames per video (fewer if a video has fewer).
    max_tokens: most tokens per answer (None: the model's generation config, else 256).
    Generation is greedy.

    Where it runs: `client`, a connected distributed.Client; else `scheduler`, the address of
    a running distributed scheduler; else a LocalCluster of `workers` processes (default 1)
    started and stopped here. threads_per_worker: the library's compute threads in each
    worker (default: this machine's CPUs divided by `workers` for a local cluster, all of a
    worker's CPUs otherwise). Each worker answers one file at a time.

    weights: "as-stored", "bf16", "q8" or "q4" (converted on load). load_mode:
    "mmap" or "read". retry_errors: answer again the files recorded with an error. progress:
    a progress bar on stderr (None: when stderr is a terminal).

    Files already recorded in `out` for the same model, prompt, frames, max_tokens and weights
    are skipped unless they changed. Returns a Summary; KeyboardInterrupt stops the run after
    writing what had arrived (Summary.interrupted; the command line exits 130). Raises
    ValueError for bad arguments and RuntimeError/OSError when the job cannot run at all.
    """
    t_start = time.perf_counter()
    if not prompt:
        _usage("the prompt is empty")
    if int(frames) < 1:
        _usage("frames must be at least 1")
    if max_tokens is not None and int(max_tokens) < 1:
        _usage("max_tokens must be at least 1")
    if load_mode not in ("mmap", "read"):
        _usage("load_mode must be 'mmap' or 'read'")
    if sum(x is not None for x in (client, scheduler, workers)) > 1:
        _usage("give at most one of client, scheduler and workers")
    if workers is not None and int(workers) < 1:
        _usage("workers must be at least 1")
    if threads_per_worker is not None and int(threads_per_worker) < 1:
        _usage("threads_per_worker must be at least 1")
    weights = _check_weights(weights)
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    paths = expand_inputs(inputs)
    if not paths:
        _usage("no input files")
    model = os.path.abspath(os.fspath(model))
    config = {
        "model": model, "question": str(prompt), "frames": int(frames),
        "max_tokens": int(max_tokens) if max_tokens is not None else None,
        "weights": weights, "load_mode": load_mode,
    }

    summary = Summary(total=len(paths))
    output = _Output(out)
    summary.out = output.path
    try:
        latest = {}
        for rec in read_results(output.path):
            latest[_job_key(rec)] = rec
        todo = []
        for path in paths:
            rec = latest.get(_job_key(dict(config, path=path)))
            if rec is not None and (rec.get("error") is None or not retry_errors) \
                    and _still_valid(rec, path):
                summary.skipped += 1
            else:
                todo.append(path)
        if todo:
            _dispatch(todo, config, output, summary, client, scheduler, workers,
                      threads_per_worker, progress)
    finally:
        output.close()
        summary.seconds = time.perf_counter() - t_start
    return summary


def _dispatch(todo, config, output, summary, client, scheduler, workers, threads_per_worker,
              progress):
    from distributed import Client, LocalCluster

    cluster = None
    own_client = client is None
    try:
        if client is None and scheduler is None:
            n = int(workers or 1)
            threads = int(threads_per_worker or _default_threads(n))
            # one task slot per worker process; no memory limit: the weights are shared,
            # memory-mapped pages that would otherwise count against every worker
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
            config = dict(config, local=True)
        else:
            threads = int(threads_per_worker or 0)
            if client is None:
                client = Client(scheduler, timeout="60s")
        config = dict(config, threads=threads)
        name = "llavanext-batch-%s" % uuid.uuid4().hex[:12]
        try:
            client.register_plugin(_make_plugin(config), name=name)
        except Exception as e:
            raise RuntimeError("a worker could not load the model %s: %s"
                               % (config["model"], _describe(e))) from e
        try:
            _collect(client, name, todo, config, output, summary, progress)
        finally:
            try:
                client.unregister_worker_plugin(name)
            except Exception:  # the cluster may be gone; nothing to free then
                pass
    finally:
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _collect(client, name, todo, config, output, summary, progress):
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    if progress is None:
        progress = sys.stderr.isatty()
    keys = ["%s-%d" % (name, i) for i in range(len(todo))]
    futures = client.map(_answer_task, [name] * len(todo), todo, key=keys, pure=False,
                         retries=0)
    path_of = {f.key: p for f, p in zip(futures, todo)}
    summary.submitted = len(futures)
    bar = _Progress(progress, len(futures),
                    "%d files to answer, %d already in %s"
                    % (len(futures), summary.skipped, output.path) if summary.skipped else None)
    pending = set(futures)
    del futures
    try:
        for future in as_completed(list(pending)):
            pending.discard(future)
            path = path_of.pop(future.key)
            try:
                rec = future.result()
            except KilledWorker as e:
                # the workers running this file died, again and again (the library crashed
                # on it, or it needs more memory than a worker has): a failure of this file
                rec = _failure_record(config, path, e)
            except _ModelNotLoaded:
                raise
            except Exception as e:
                # anything else is about the cluster, not the file (scheduler gone, task
                # cancelled): stop; what arrived is kept and a rerun goes on from there
                raise RuntimeError("the job stopped at %s: %s (rerun to go on)"
                                   % (path, _describe(e))) from e
            finally:
                future.release()
            if rec.get("error") is None:
                summary.answered += 1
                note = None
            else:
                summary.failed += 1
                note = "failed: %s: %s" % (path, rec["error"])
            output.append(rec)
            bar.update(note)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        if pending:
            try:
                client.cancel(list(pending), force=True)
            except Exception:  # the cluster may be gone already
                pass


def _failure_record(config, path, error):
    """The record of a file whose task failed outside the worker's own error handling."""
    rec = {k: None for k in RECORD_FIELDS}
    rec.update({k: config[k] for k in ("question", "frames", "max_tokens", "weights", "model")})
    rec.update(path=path, error=_describe(error))
    try:
        st = os.stat(path)
        rec.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
    except OSError:
        pass
    return rec


# ---- command line ----------------------------------------------------------------------------


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m llavanext.batch",
        description="Answer one question about many videos (or images) with libllavanext on a "
                    "Dask cluster. Results are appended to --out as JSON lines as they finish; "
                    "a rerun skips what is already there.")
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_GLOB",
                   help="files, directories (their media files, recursively) or glob patterns "
                        "(quote them; ** recurses)")
    p.add_argument("--model", required=True, metavar="DIR",
                   help="Hugging Face checkpoint directory (the same path on every worker)")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the question")
    p.add_argument("--out", required=True, metavar="FILE", help="results, JSON lines (appended)")
    p.add_argument("--frames", type=int, default=8, metavar="N",
                   help="frames sampled uniformly from each video (default 8)")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="most tokens per answer (default: generation config, else 256)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR",
                       help="address of a running Dask scheduler (e.g. tcp://host:8786)")
    where.add_argument("--workers", type=int, metavar="N",
                       help="worker processes of a local cluster on this machine (default 1)")
    p.add_argument("--threads-per-worker", type=int, metavar="N",
                   help="compute threads of each worker (default: local cluster: CPUs / "
                        "workers; --scheduler: all CPUs of the worker's machine)")
    p.add_argument("--weights", default=AS_STORED, metavar="MODE",
                   help="'as-stored' (default), or converted on load by each worker: bf16, q8 "
                        "(8-bit) or q4 (4-bit); see docs/quantization.md")
    p.add_argument("--load", choices=("mmap", "read"), default="mmap",
                   help="how workers load the weights (default mmap)")
    p.add_argument("--retry-errors", action="store_true",
                   help="answer again the files recorded with an error")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar (default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv=None):
    """The command line; returns the exit status."""
    args = _parser().parse_args(argv)
    prog = "llavanext.batch"
    try:
        summary = run(args.inputs, model=args.model, prompt=args.prompt, out=args.out,
                      frames=args.frames, max_tokens=args.max_tokens, scheduler=args.scheduler,
                      workers=args.workers, threads_per_worker=args.threads_per_worker,
                      weights=args.weights, load_mode=args.load,
                      retry_errors=args.retry_errors, progress=args.progress)
    except ValueError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted; run the same command again to go on" % prog, file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 1
    rate = summary.answered + summary.failed
    per = (" (%.2f files/s)" % (rate / summary.seconds)) if rate and summary.seconds else ""
    print("%s: %d answered, %d failed, %d skipped (already in %s), %d of %d files in %.1f s%s"
          % (prog, summary.answered, summary.failed, summary.skipped, summary.out, rate,
             summary.total, summary.seconds, per), file=sys.stderr)
    if summary.interrupted:
        print("%s: interrupted with %d files left; run the same command again to go on"
              % (prog, summary.remaining), file=sys.stderr)
        return 130
    return 3 if summary.failed else 0


if __name__ == "__main__":
    # Run through the module's real name, so that what is sent to the workers (the plugin and
    # the task) pickles as llavanext.batch.*, importable there, not as __main__.*.
    from llavanext.batch import main as _main

    sys.exit(_main())
