"""Collecting a job's warnings thread by thread (tinct.engine.thread_warnings).

Each test runs inside its own ``catch_warnings`` (one thread at a time, in the test's
thread) that sets the user's filters and handler and puts the process back afterwards.
"""

import threading
import warnings
from collections.abc import Iterator

import pytest

from tinct.engine import thread_warnings as tw
from tinct.engine.inputs import InputWarning
from tinct.engine.thread_warnings import CollectedHere, collect_warnings


@pytest.fixture
def shown() -> Iterator[list[str]]:
    """The user's state: Python's default dedup (once per place) and a handler of their own."""
    seen: list[str] = []
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *args, **kwargs: seen.append(str(message))
        yield seen


def _state() -> tuple[list[tuple], object, object]:
    return list(warnings.filters), warnings.showwarning, tw._previous


def _texts(caught) -> list[str]:
    return [str(w.message) for w in caught]


def note(text: str = "the input is nearly constant") -> None:
    """Warns from one place, as the engine does."""
    warnings.warn(text, InputWarning, stacklevel=1)


def test_two_threads_collecting_at_once_each_get_exactly_their_own(shown):
    both_open = threading.Barrier(2)
    step = threading.Barrier(2)
    got: dict[str, list[str]] = {}

    def job(name: str) -> None:
        with collect_warnings() as caught:
            both_open.wait()
            for i in range(40):
                note(f"{name} {i}")
                if i % 8 == 0:
                    step.wait()  # the two threads' warnings interleave
        got[name] = _texts(caught)

    threads = [threading.Thread(target=job, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {name: [f"{name} {i}" for i in range(40)] for name in ("a", "b")}
    assert shown == []  # nothing leaked to the handler


def test_out_of_order_exit_leaves_the_process_as_it_was(shown):
    with collect_warnings():  # installs the dispatcher and the filter, once
        pass
    before = _state()
    a_open, b_open, a_closed = threading.Event(), threading.Event(), threading.Event()
    got: dict[str, list[str]] = {}

    def first() -> None:
        with collect_warnings() as caught:
            a_open.set()
            b_open.wait()
            note("a")
        a_closed.set()  # exits while b is still open: catch_warnings would restore a stale state
        got["a"] = _texts(caught)

    def second() -> None:
        a_open.wait()
        with collect_warnings() as caught:
            b_open.set()
            a_closed.wait()
            note("b")
        got["b"] = _texts(caught)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # and in one thread, closed in the order they were opened
    outer, inner = collect_warnings(), collect_warnings()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    note("still collected by the inner one")
    inner.__exit__(None, None, None)
    assert got == {"a": ["a"], "b": ["b"]}
    assert _state() == before and tw._stack() == []
    note("after")
    note("after")  # the user's filters again: once per place
    assert shown == ["after"]


def test_the_user_state_outside_a_collector_is_kept(shown):
    user_filters = list(warnings.filters)
    with collect_warnings():
        pass
    assert warnings.filters[0][2] is CollectedHere  # one inert filter, at the front
    assert warnings.filters[1:] == user_filters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with collect_warnings() as caught:
            note("a front end's note")  # shown by the front end whatever the filters
        note("a library user's")  # ignored, as the user asked
    assert _texts(caught) == ["a front end's note"] and shown == []


def test_nested_collectors_take_what_is_theirs(shown):
    with collect_warnings(UserWarning) as outer:
        warnings.warn("a user warning", UserWarning, stacklevel=1)
        with collect_warnings(InputWarning) as inner:
            note("an input note")
            warnings.warn("another user warning", UserWarning, stacklevel=1)
            warnings.warn("for developers", DeprecationWarning, stacklevel=1)
        note("after the inner one")
    assert _texts(inner) == ["an input note"]
    assert _texts(outer) == ["a user warning", "another user warning", "after the inner one"]
    assert shown == ["for developers"]


def test_a_repeated_identical_warning_is_collected_each_time(shown):
    note()  # shown once outside a collector: Python remembers the place
    note()
    for _ in range(2):  # the job repeated
        with collect_warnings() as caught:
            for _ in range(3):
                note()
        assert _texts(caught) == ["the input is nearly constant"] * 3
    assert shown == ["the input is nearly constant"]


def test_other_threads_warnings_reach_the_handler_in_place(shown):
    def elsewhere() -> None:
        note("from another thread")
        note("from another thread")

    with collect_warnings() as caught:
        note("mine")
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert _texts(caught) == ["mine"]
    assert shown == ["from another thread"]  # under the user's filters: once per place


def test_every_category_and_a_handler_that_passes_warnings_back(shown, capsys):
    with collect_warnings(Warning) as caught:
        warnings.warn("old API", DeprecationWarning, stacklevel=1)  # ignored by default
    assert [w.category for w in caught] == [DeprecationWarning]
    dispatcher = warnings.showwarning

    def passes_back(*args, **kwargs) -> None:  # kept the dispatcher as its previous one
        shown.append("seen")
        dispatcher(*args, **kwargs)

    warnings.showwarning = passes_back
    with collect_warnings():  # the dispatcher goes in front again, passes_back behind it
        pass
    note("round and round")
    assert shown == ["seen"]
    assert "round and round" in capsys.readouterr().err  # printed once, no endless loop
