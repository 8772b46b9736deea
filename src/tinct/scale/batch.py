"""Folder-to-folder colorization over a ``dask.distributed`` cluster (``tinct batch``).

Every image or video file under the input folder (recursively, by suffix,
:func:`tinct.scale.planning.plan`) becomes one task: :func:`run_batch`
submits :func:`tinct.scale.file_task.colorize_file` for each file that has no
finished output yet, and counts the outcomes in a :class:`BatchSummary`.
Before submitting anything it

* marks as failed inputs whose output name an earlier input already claims
  (``a.png`` and ``a.jpg``), and as skipped those whose output exists and
  decodes, so a rerun resumes an interrupted run without starting a cluster;
* starts a :class:`distributed.LocalCluster` of worker processes (with
  :data:`LOCAL_CLUSTER_CONFIG`) unless given a scheduler address or a client.

Tasks are submitted with ``retries`` and ``pure=False``; when a worker dies,
the scheduler reruns its tasks elsewhere (the nanny restarts the worker). A
task that died is a failed file, never an exception of the run, and the
temporary files of workers killed mid-write are removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tinct.engine.options import ColorizeOptions
from tinct.engine.outputs import TMP_MARK, output_path_for
from tinct.scale.file_task import FileResult, colorize_file
from tinct.scale.planning import existing_output, plan
from tinct.scale.scheduler import DEFAULT_CONNECT_TIMEOUT, check_scheduler

__all__ = ["LOCAL_CLUSTER_CONFIG", "BatchSummary", "default_workers", "run_batch"]

#: Dask settings of the local cluster. Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_``
#: in its workers by default; that disables glibc's adaptive mmap threshold, so
#: every large temporary tensor is a fresh ``mmap`` with page faults, which made
#: colorization about 1.7x slower in workers than in a plain process. ``None``
#: removes the variable.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # Ctrl-C: no "Async instruction ... ended with CancelledError" from each busy worker
    "distributed.worker.preload": ["tinct.scale.worker_setup"],
}


#: Failed files named in the summary line (the rest are counted).
SUMMARY_FAILED = 5


@dataclass
class BatchSummary:
    """Counts and per-file results of a batch run.

    Attributes:
        done: Files colorized in this run.
        skipped: Files whose output already existed.
        failed: Files that failed (see ``results``).
        seconds: Wall-clock time of the run.
        results: Every :class:`FileResult`, in completion order.
    """

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: list[FileResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed; 2 when a file failed for an option's value; else 1."""
        if any(r.status == "failed" and r.option for r in self.results):
            return 2
        return 1 if self.failed else 0

    def line(self) -> str:
        """The one-line summary printed by ``tinct batch``; it names the failed files.

        Up to :data:`SUMMARY_FAILED` failed files are named; beyond that the
        line says how many more there are (each has its own line above it).
        """
        text = (
            f"{self.done} done, {self.skipped} skipped, {self.failed} failed "
            f"in {self.seconds:.1f} s"
        )
        failed = [r.input for r in self.results if r.status == "failed"]
        if failed:
            text += "; failed: " + ", ".join(failed[:SUMMARY_FAILED])
            if len(failed) > SUMMARY_FAILED:
                text += f" and {len(failed) - SUMMARY_FAILED} more (each reported above)"
        return text

    def add(self, result: FileResult) -> None:
        """Count one result."""
        self.results.append(result)
        if result.status == "done":
            self.done += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1


def default_workers() -> int:
    """Local worker processes by default: half the cores (at least 1, at most 8)."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def _collisions(pairs: list[tuple[Path, Path]]) -> dict[Path, Path]:
    """Inputs whose output name an earlier input already claims (``a.png`` and ``a.jpg``)."""
    seen: dict[Path, Path] = {}
    clash: dict[Path, Path] = {}
    for src, out in pairs:
        key = output_path_for(src, out).with_suffix("")
        if key in seen:
            clash[src] = seen[key]
        else:
            seen[key] = src
    return clash


def _iter_results(client: Any, futures: list[Any]) -> Iterator[FileResult]:
    from distributed import as_completed

    inputs = {f.key: src for f, src in futures}
    for fut in as_completed([f for f, _ in futures]):
        try:
            res = fut.result()
        except Exception as exc:  # the task itself died (e.g. KilledWorker after retries)
            msg = str(exc).splitlines()[0] if str(exc) else "no reason given"
            res = FileResult(str(inputs[fut.key]), None, "failed", f"the task failed: {msg}")
        fut.release()
        yield res


def run_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    options: ColorizeOptions | None = None,
    *,
    scheduler: str | None = None,
    client: Any = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    retries: int = 2,
    pretrained: bool = True,
    progress: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    output_depth: str = "auto",
) -> BatchSummary:
    """Colorize every image and video under ``in_dir`` into ``out_dir`` on a Dask cluster.

    Args:
        in_dir: Input folder (searched recursively). Paths are made absolute;
            on a remote cluster they must mean the same on every worker
            (a shared file system).
        out_dir: Output folder (sub-folders mirror the input's).
        options: Colorization options (model, temperature, ...).
        scheduler: Address of a running scheduler (``tcp://host:8786``);
            ``None`` starts a :class:`distributed.LocalCluster` of worker processes.
        client: An existing :class:`distributed.Client` (overrides ``scheduler``).
        workers: Worker processes of the local cluster (:func:`default_workers`).
        threads_per_worker: Torch threads per worker process. Each worker runs
            one task at a time; ``None`` = cores // workers locally, and
            cores // dask threads on each worker of a remote cluster.
        retries: Extra attempts for a task that raised. Tasks report file
            errors instead of raising, so this covers failures outside them
            (e.g. unpicklable results); a task whose worker *died* is
            rescheduled by the scheduler itself, up to Dask's
            ``distributed.scheduler.allowed-failures`` (3) times.
        pretrained: Load trained weights (``False``: random weights, tests).
        progress: Show a tqdm progress bar on stderr.
        on_result: Called with every :class:`FileResult` as it arrives.
        connect_timeout: Seconds the ``scheduler`` has to answer (5 by default;
            more for a slow cluster). It is asked only when some file needs work.
        output_depth: Bits a channel of the outputs, ``"auto"`` (a uint16 input gives
            a 16-bit PNG, the rest 8 bits), ``"8"`` or ``"16"``
            (:func:`tinct.engine.outputs.output_depth`; ``"16"`` fails each video).

    Returns:
        The summary; ``summary.exit_code`` is 0 when nothing failed.

    Raises:
        SchedulerUnreachableError: No Dask scheduler answered at ``scheduler``
            within ``connect_timeout`` (:mod:`tinct.scale.scheduler`); no file
            was handed out.
    """
    import dask
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    opts = options or ColorizeOptions()
    if Path(opts.model).is_file():  # workers have other working directories
        opts = opts.replace(model=str(Path(opts.model).resolve()))
    out = Path(out_dir).resolve()
    summary = BatchSummary()
    pairs = plan(Path(in_dir).resolve(), out)
    clash = _collisions(pairs)
    todo = []
    for src, dest_dir in pairs:
        if src in clash:
            summary.add(
                FileResult(
                    str(src), None, "failed", f"output name clashes with {clash[src]} (same stem)"
                )
            )
        elif (found := existing_output(src, dest_dir)) is not None:
            summary.add(FileResult(str(src), str(found), "skipped"))
        else:
            todo.append((src, dest_dir))
    for res in summary.results:
        if res.status == "failed":
            _report(res, None)
        if on_result:
            on_result(res)
    if not todo:
        summary.seconds = time.perf_counter() - t0
        return summary

    cluster = None
    own_client = client is None
    if client is None:
        if scheduler:  # Client() alone waits 30 s, or for ever where something else listens
            check_scheduler(scheduler, connect_timeout)
            client = Client(scheduler, timeout=connect_timeout)
        else:
            n = workers or default_workers()
            if threads_per_worker is None:
                threads_per_worker = max(1, (os.cpu_count() or 1) // n)
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                )
            try:
                client = Client(cluster)
            except BaseException:  # its worker processes would outlive the run
                with _quiet_shutdown():
                    cluster.close()
                raise
    bar = None
    try:
        if progress:  # once the cluster answers: an unreachable one is one line, no bar
            from tqdm import tqdm

            bar = tqdm(
                total=len(pairs), initial=len(pairs) - len(todo), unit="image", desc="batch",
                file=sys.stderr,
            )  # fmt: skip
        futures = [
            (
                client.submit(
                    colorize_file, str(src), str(dest_dir), opts, threads=threads_per_worker,
                    pretrained=pretrained, output_depth=output_depth, pure=False,
                    retries=retries, key=f"tinct-batch-{uuid.uuid4().hex}",
                ),
                src,
            )
            for src, dest_dir in todo
        ]  # fmt: skip
        for res in _iter_results(client, futures):
            if res.status == "skipped":
                # the output was absent when planned: a retried task found what an
                # attempt lost with its worker had already written in this run
                res = replace(res, status="done")
            summary.add(res)
            if res.status == "failed" or res.warnings:
                _report(res, bar)
            if on_result:
                on_result(res)
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
        with _quiet_shutdown():
            if own_client:
                client.close()
            if cluster is not None:
                cluster.close()
        _remove_stale_tmp({d for _, d in todo})
    summary.seconds = time.perf_counter() - t0
    return summary


#: Loggers whose warnings while the local cluster closes are Dask's business, not the user's
#: ("Worker process still alive after 4.0 seconds, killing": a busy worker is stopped).
SHUTDOWN_LOGGERS = ("distributed.nanny", "distributed.worker", "distributed.scheduler")


@contextlib.contextmanager
def _quiet_shutdown() -> Iterator[None]:
    """Only errors from :data:`SHUTDOWN_LOGGERS` while the client and the cluster close."""
    import logging

    loggers = [logging.getLogger(name) for name in SHUTDOWN_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _report(res: FileResult, bar: Any) -> None:
    """Tell a file's failure, or its warnings, one line each (advice naming CLI flags)."""
    from tinct.engine.contrast import advice_in, worded_for

    told = [f"warning: {worded_for(w, advice_in('cli'))}" for w in res.warnings]
    lines = told if res.status != "failed" else [res.error]
    for line in lines:
        line = f"tinct batch: {res.input}: {line}"
        if bar is not None:
            bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)


def _remove_stale_tmp(folders: set[Path]) -> None:
    """Delete temporary files left by workers killed mid-write (our marker only)."""
    for folder in folders:
        if folder.is_dir():
            for p in folder.glob(f".*{TMP_MARK}*"):
                with contextlib.suppress(OSError):
                    p.unlink()
