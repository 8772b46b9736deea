"""The thread policy of engine calls (tinct.engine.threads)."""

import pytest
import torch

from engine_helpers import JOINT, TinyModel, gradient_image
from tinct.engine.colorizer import Colorizer


def test_thread_policy_restores_torch_setting():
    from tinct.engine.threads import resolve_threads, torch_threads

    before = torch.get_num_threads()
    c = Colorizer(TinyModel(JOINT), device="cpu", num_threads=1)
    c.colorize(gradient_image(32, 32))
    assert torch.get_num_threads() == before
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(1):
            pass
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert resolve_threads(None, torch.device("cpu")) is None
    assert resolve_threads(3, torch.device("cpu")) == 3
    with pytest.raises(ValueError, match="num_threads"):
        Colorizer(TinyModel(JOINT), device="cpu", num_threads=0)


def test_calls_run_blas_on_one_thread_and_restore_it():
    """OpenBLAS's spinning workers take the cores the next network pass needs: during a
    call BLAS runs on one thread, afterwards (and after nested calls) as before."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from tinct.engine import threads

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):  # a multi-threaded BLAS to start from
        before = blas_threads()
        seen: list[list[int]] = []

        class Spy(TinyModel):
            def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                seen.append(blas_threads())
                return super().forward(*args, **kwargs)

        c = Colorizer(Spy(JOINT), device="cpu")
        c.colorize(gradient_image(32, 32))
        assert seen and all(t == 1 for t in seen[0])
        assert blas_threads() == before
        with threads.call_threads("auto", torch.device("cpu")):
            with threads.call_threads(2, torch.device("cpu")):
                assert all(t == 1 for t in blas_threads())
            assert all(t == 1 for t in blas_threads())
        assert blas_threads() == before
        with threads.call_threads(None, torch.device("cpu")):  # None: left alone
            assert blas_threads() == before


def test_cpu_busy_counts_other_processes_not_this_one(monkeypatch):
    from tinct.engine import threads

    samples = iter(
        [
            (0.0, 100.0, 10.0),
            (1.0, 102.0, 12.0),  # the machine used 2 cores, all of it this process: idle
            (1.1, 102.1, 12.1),  # 0.1 s later: too short to measure, the last verdict stands
            (2.0, 103.9, 12.2),  # others used 1.7 cores of 2: busy
        ]
    )
    monkeypatch.setattr(threads, "_cpu_sample", lambda: next(samples))
    monkeypatch.setattr(threads, "_BUSY_STATE", {"sample": None, "verdict": None})
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.cpu_busy() is False  # first call: the load average
    assert threads.cpu_busy() is False
    assert threads.cpu_busy() is False
    assert threads.cpu_busy() is True
    monkeypatch.setattr(threads, "_cpu_sample", lambda: None)  # no /proc: the load average
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert threads.cpu_busy() is True
