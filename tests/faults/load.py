"""Driving verify requests at a served certcheck, and judging every answer against the contract.

The contract under faults (api.md, "When the registry cannot be consulted"): never an `allow`
the registry does not support; every failure a 503 problem document with a `code` and a
`Retry-After`; every answer within the database deadline plus 250 ms; never a 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

SLACK = 0.25  # seconds an answer may take beyond the database deadline


@dataclass(frozen=True, slots=True)
class Answer:
    number: str
    started: float  # time.monotonic()
    elapsed: float
    status: int | None  # None: no HTTP answer at all
    error: str | None  # the transport error's type, when there was no answer
    decision: str | None
    code: str | None
    content_type: str
    retry_after: str | None

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    def describe(self) -> str:
        what = self.error or f"{self.status} {self.decision or self.code}"
        return f"{self.number}: {what} in {self.elapsed:.3f} s"


def verify(client: httpx.Client, number: str) -> Answer:
    started = time.monotonic()
    try:
        response = client.post("/v1/verify", json={"cert_no": number, "listing_id": number})
    except httpx.TransportError as exc:
        elapsed = time.monotonic() - started
        return Answer(number, started, elapsed, None, type(exc).__name__, None, None, "", None)
    elapsed = time.monotonic() - started
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    return Answer(
        number=number,
        started=started,
        elapsed=elapsed,
        status=response.status_code,
        error=None,
        decision=body.get("decision") if response.status_code == 200 else None,
        code=body.get("code") if response.status_code != 200 else None,
        content_type=response.headers.get("content-type", ""),
        retry_after=response.headers.get("retry-after"),
    )


def client(base: str, key: str, deadline: float) -> httpx.Client:
    # Wait well past the deadline, so a stall shows as a late answer rather than a hang.
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=deadline + 5
    )


class Load:
    """`threads` clients asking for `numbers` round-robin until stopped (or `seconds` pass)."""

    def __init__(
        self,
        base: str,
        key: str,
        numbers: Sequence[str],
        *,
        deadline: float,
        threads: int = 3,
        seconds: float = 60,
        pause: float = 0.01,
    ) -> None:
        self._args = (base, key, deadline)
        self._numbers = list(numbers)
        self._seconds = seconds
        self._pause = pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answers: list[Answer] = []
        self._threads = [
            threading.Thread(target=self._run, args=(n, threads), daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.answers

    def _run(self, offset: int, stride: int) -> None:
        end = time.monotonic() + self._seconds
        with client(*self._args) as http:
            i = offset
            while not self._stop.is_set() and time.monotonic() < end:
                answer = verify(http, self._numbers[i % len(self._numbers)])
                with self._lock:
                    self.answers.append(answer)
                i += stride
                self._stop.wait(self._pause)


def violations(
    answers: Iterable[Answer],
    allowable: frozenset[str],
    deadline: float,
    *,
    refused_ok: bool = False,
) -> list[str]:
    """Every way in which `answers` break the contract; empty when they keep it."""
    found = []
    for a in answers:
        why = _violation(a, allowable, deadline + SLACK, refused_ok=refused_ok)
        if why:
            found.append(f"{why}: {a.describe()}")
    return found


def _violation(a: Answer, allowable: frozenset[str], limit: float, *, refused_ok: bool) -> str:
    if a.status is None:
        return "" if refused_ok and a.error == "ConnectError" else "no answer"
    if a.elapsed > limit:
        return f"slower than {limit:.2f} s"
    if a.status == 200:
        if a.decision == "allow" and a.number not in allowable:
            return "ALLOW NOT SUPPORTED BY THE REGISTRY"
        return "" if a.decision in ("allow", "block", "review") else "no decision"
    if a.status != 503:
        return f"status {a.status}"
    if not a.content_type.startswith("application/problem+json"):
        return f"503 as {a.content_type!r}"
    if not a.code:
        return "503 without a code"
    if not (a.retry_after or "").isdigit():
        return f"503 with Retry-After {a.retry_after!r}"
    return ""


def assert_contract(
    answers: Sequence[Answer],
    allowable: frozenset[str],
    deadline: float,
    *,
    refused_ok: bool = False,
) -> None:
    assert answers, "no request was made"
    found = violations(answers, allowable, deadline, refused_ok=refused_ok)
    shown = "\n  ".join(found[:15])
    assert not found, f"{len(found)} of {len(answers)} answers break the contract:\n  {shown}"


def within(answers: Iterable[Answer], start: float, end: float) -> Iterator[Answer]:
    """Answers to requests made and answered between `start` and `end`."""
    return (a for a in answers if a.started >= start and a.ended <= end)
