"""Circuit breaker: pure transition functions plus a small thread-safe shell with an injectable clock.

Done right where the original is not: it counts CONSECUTIVE inference failures, the reset timeout and
the half-open probe count are configurable, reading the state never changes it, and a failed probe
re-opens the breaker instead of leaving it half-open forever.

closed --threshold consecutive failures--> open --reset timeout--> half_open
half_open --probes successes--> closed;  half_open --any failure--> open

Examples:
    >>> t = [0.0]
    >>> cb = CircuitBreaker(BreakerPolicy(threshold=2, reset_timeout_s=10.0, probes=1), clock=lambda: t[0])
    >>> for _ in range(2):
    ...     cb.failure(cb.admit())
    >>> cb.state
    'open'
    >>> t[0] = 10.0
    >>> cb.state
    'half_open'
    >>> cb.success(cb.admit()); cb.state
    'closed'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from tinydancer.errors import CircuitOpenError
from tinydancer.observability.metrics import BREAKER_STATES

#: The three states, named as in :data:`~tinydancer.observability.metrics.BREAKER_STATES` (state -> the
#: guide's gauge value, 0 closed, 1 half-open, 2 open): that map is their one definition.
CLOSED, HALF_OPEN, OPEN = BREAKER_STATES


class BreakerPolicy(NamedTuple):
    """threshold consecutive failures open it; it probes after reset_timeout_s; probes successes close it."""

    threshold: int = 5
    reset_timeout_s: float = 60.0
    probes: int = 3
    enabled: bool = True


class BreakerState(NamedTuple):
    """Immutable breaker state."""

    kind: str = CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probes_in_flight: int = 0
    probe_successes: int = 0


def observed(state: BreakerState, now: float, policy: BreakerPolicy) -> BreakerState:
    """The state as of ``now``: an open breaker whose timeout has passed is half-open.

    Examples:
        >>> observed(BreakerState(OPEN, 5, opened_at=0.0), 60.0, BreakerPolicy()).kind
        'half_open'
    """
    if state.kind == OPEN and now - state.opened_at >= policy.reset_timeout_s:
        return BreakerState(HALF_OPEN)
    return state


def admit(state: BreakerState, now: float, policy: BreakerPolicy) -> tuple[BreakerState, bool, float]:
    """Decide whether a request may run.

    Returns:
        (new state, whether it is a half-open probe, retry_after seconds or -1 when admitted).

    Examples:
        >>> admit(BreakerState(OPEN, 5, opened_at=0.0), 20.0, BreakerPolicy())[2]
        40.0
    """
    state = observed(state, now, policy)
    if not policy.enabled or state.kind == CLOSED:
        return state, False, -1.0
    if state.kind == OPEN:
        return state, False, state.opened_at + policy.reset_timeout_s - now
    if state.probes_in_flight + state.probe_successes < policy.probes:
        return state._replace(probes_in_flight=state.probes_in_flight + 1), True, -1.0
    return state, False, 0.0  # every probe slot is taken: retry as soon as a probe finishes


def on_success(state: BreakerState, probe: bool, policy: BreakerPolicy) -> BreakerState:
    """A request's inference succeeded.

    Examples:
        >>> on_success(BreakerState(HALF_OPEN, probes_in_flight=1, probe_successes=2), True, BreakerPolicy()).kind
        'closed'
    """
    if probe and state.kind == HALF_OPEN:
        successes = state.probe_successes + 1
        if successes >= policy.probes:
            return BreakerState(CLOSED)
        return state._replace(probes_in_flight=state.probes_in_flight - 1, probe_successes=successes)
    if state.kind == CLOSED:
        return BreakerState(CLOSED)
    return state


def on_failure(state: BreakerState, probe: bool, now: float, policy: BreakerPolicy) -> BreakerState:
    """A request's inference failed.

    Examples:
        >>> on_failure(BreakerState(CLOSED, 4), False, 7.0, BreakerPolicy(threshold=5))
        BreakerState(kind='open', consecutive_failures=5, opened_at=7.0, probes_in_flight=0, probe_successes=0)
    """
    if not policy.enabled:
        return state
    if state.kind == HALF_OPEN and probe:
        return BreakerState(OPEN, state.consecutive_failures + 1, opened_at=now)
    if state.kind == CLOSED:
        failures = state.consecutive_failures + 1
        if failures >= policy.threshold:
            return BreakerState(OPEN, failures, opened_at=now)
        return state._replace(consecutive_failures=failures)
    return state


def on_release(state: BreakerState, probe: bool) -> BreakerState:
    """A request was admitted but never reached inference (e.g. invalid input): free its probe slot.

    Examples:
        >>> on_release(BreakerState(HALF_OPEN, probes_in_flight=1), True).probes_in_flight
        0
    """
    if probe and state.kind == HALF_OPEN:
        return state._replace(probes_in_flight=max(0, state.probes_in_flight - 1))
    return state


class Ticket(NamedTuple):
    """What :meth:`CircuitBreaker.admit` hands out; give it back with success/failure/release."""

    probe: bool


#: The ticket of every request that is not a half-open probe, and the state success leaves unchanged.
_ORDINARY = Ticket(False)
_CLEAN = BreakerState()


class CircuitBreaker:
    """Thread-safe shell around the pure transitions.

    Args:
        policy: thresholds.
        clock: seconds, monotonic or wall; injectable for tests.
        on_transition: called as ``on_transition(old_kind, new_kind)`` on every state change
            (outside the lock), e.g. to update a gauge and log.
    """

    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[str, str], None] | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState()
        self._reported = CLOSED
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """'closed' | 'half_open' | 'open', as of now; reading it changes nothing."""
        return observed(self._state, self._clock(), self.policy).kind

    def _commit(self, new: BreakerState) -> tuple[str, str] | None:
        self._state = new
        if new.kind != self._reported:
            change = (self._reported, new.kind)
            self._reported = new.kind
            return change
        return None

    def _notify(self, change: tuple[str, str] | None) -> None:
        if change is not None and self._on_transition is not None:
            self._on_transition(*change)

    def admit(self) -> Ticket:
        """Admit a request or raise :class:`CircuitOpenError` carrying ``retry_after``."""
        if self._state.kind == CLOSED:  # one atomic read: a closed breaker admits and stays as it is
            return _ORDINARY
        with self._lock:
            new, probe, retry_after = admit(self._state, self._clock(), self.policy)
            change = self._commit(new)
        self._notify(change)
        if retry_after >= 0:
            raise CircuitOpenError(retry_after)
        return Ticket(probe)

    def success(self, ticket: Ticket) -> None:
        """Report a successful inference."""
        if self._state == _CLEAN:  # closed without failures: a success changes nothing
            return
        with self._lock:
            change = self._commit(on_success(self._state, ticket.probe, self.policy))
        self._notify(change)

    def failure(self, ticket: Ticket) -> None:
        """Report a failed inference."""
        with self._lock:
            change = self._commit(on_failure(self._state, ticket.probe, self._clock(), self.policy))
        self._notify(change)

    def release(self, ticket: Ticket) -> None:
        """Return a ticket whose request never reached inference."""
        if not ticket.probe:  # only a probe's slot is given back
            return
        with self._lock:
            self._state = on_release(self._state, ticket.probe)
