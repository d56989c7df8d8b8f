"""Circuit breaker transitions, with an injected clock and property tests of the invariants."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinydancer.errors import CircuitOpenError
from tinydancer.routing.breaker import BreakerPolicy, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(threshold: int = 3, timeout: float = 60.0, probes: int = 2) -> tuple[CircuitBreaker, Clock, list]:
    clock, changes = Clock(), []
    cb = CircuitBreaker(BreakerPolicy(threshold, timeout, probes), clock, lambda a, b: changes.append((a, b)))
    return cb, clock, changes


def test_consecutive_failures_open_and_success_resets() -> None:
    cb, _, changes = make(threshold=3)
    for _ in range(2):
        cb.failure(cb.admit())
    cb.success(cb.admit())  # resets the consecutive count
    for _ in range(2):
        cb.failure(cb.admit())
    assert cb.state == "closed"
    cb.failure(cb.admit())
    assert cb.state == "open" and changes == [("closed", "open")]


def test_open_rejects_with_retry_after_then_half_open_probes_close() -> None:
    cb, clock, changes = make(threshold=1, timeout=60.0, probes=2)
    cb.failure(cb.admit())
    clock.t += 15.0
    with pytest.raises(CircuitOpenError) as info:
        cb.admit()
    assert info.value.retry_after == pytest.approx(45.0)
    clock.t += 45.0
    assert cb.state == "half_open"
    assert changes == [("closed", "open")]  # reading the state changed nothing
    first, second = cb.admit(), cb.admit()
    assert first.probe and second.probe
    with pytest.raises(CircuitOpenError) as info:
        cb.admit()  # all probe slots taken
    assert info.value.retry_after == 0.0
    cb.success(first)
    assert cb.state == "half_open"
    cb.success(second)
    assert cb.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens_and_release_frees_slot() -> None:
    cb, clock, _ = make(threshold=1, timeout=10.0, probes=1)
    cb.failure(cb.admit())
    clock.t += 10.0
    ticket = cb.admit()
    cb.release(ticket)  # e.g. invalid input: never reached the model
    ticket = cb.admit()
    cb.failure(ticket)
    assert cb.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        cb.admit()
    assert info.value.retry_after == pytest.approx(10.0)


def test_disabled_breaker_never_opens() -> None:
    cb = CircuitBreaker(BreakerPolicy(threshold=1, enabled=False), Clock())
    for _ in range(10):
        cb.failure(cb.admit())
    assert cb.state == "closed"


events = st.lists(st.sampled_from(["ok", "fail", "release", "tick"]), max_size=60)


@given(events, st.integers(1, 4), st.integers(1, 3))
def test_invariants_hold_for_any_event_sequence(seq: list[str], threshold: int, probes: int) -> None:
    cb, clock, changes = make(threshold=threshold, timeout=5.0, probes=probes)
    consecutive = 0
    for event in seq:
        if event == "tick":
            clock.t += 3.0
            continue
        before = cb.state
        try:
            ticket = cb.admit()
        except CircuitOpenError as exc:
            assert before in ("open", "half_open") and exc.retry_after >= 0
            continue
        if event == "ok":
            cb.success(ticket)
            consecutive = 0
        elif event == "fail":
            cb.failure(ticket)
            consecutive += 1
        else:
            cb.release(ticket)
        state = cb.state
        assert state in ("closed", "half_open", "open")
        if state == "closed":
            assert cb._state.consecutive_failures < threshold
        assert cb.state == state  # reading twice changes nothing
    # every reported transition connects the previous one
    for (_, b), (c, _) in itertools.pairwise(changes):
        assert b == c


def _hammer(cb: CircuitBreaker, settle: str, calls: int) -> None:
    for _ in range(calls):
        try:
            ticket = cb.admit()
        except CircuitOpenError:
            continue
        getattr(cb, settle)(ticket)


def test_threads_of_successes_and_releases_keep_the_failure_count_exact() -> None:
    """A closed breaker admits and settles without its lock; other threads' failures must still count."""
    for settle, failures in (("release", 50), ("success", 49)):
        cb, _, changes = make(threshold=50, timeout=1e9)
        workers = [threading.Thread(target=_hammer, args=(cb, settle, 20_000)) for _ in range(3)]
        for worker in workers:
            worker.start()
        for _ in range(failures):
            cb.failure(cb.admit())
        for worker in workers:
            worker.join()
        if settle == "release":  # releases never reset the count: the 50th failure opens it
            assert cb.state == "open" and changes == [("closed", "open")]
        else:  # successes may reset it meanwhile; one more after every failure leaves it clean
            cb.success(cb.admit())
            assert cb.state == "closed" and cb._state.consecutive_failures == 0 and changes == []
