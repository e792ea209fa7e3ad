"""The cyclic collector is paused while any window is packed, and left as it was found afterwards."""

import gc
import threading

from rtdp_dagster.collection.gc_pause import gc_paused


def test_paused_inside_resumed_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_overlapping_pauses_of_two_threads_resume_once_both_end() -> None:
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    with gc_paused():
        pass
    assert not gc.isenabled()  # the worker's pause outlives this one
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_exception_inside_still_resumes() -> None:
    try:
        with gc_paused():
            raise RuntimeError("a failing source read")
    except RuntimeError:
        pass
    assert gc.isenabled()
