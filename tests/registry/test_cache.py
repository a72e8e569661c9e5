"""The certificate cache and the per-certificate memo, without a database."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from datetime import date

import pytest

from certcheck.registry.cache import (
    NOT_CACHED,
    CertificateCache,
    Memo,
    certificate_of,
    values_of,
)
from certcheck.verification.records import Certificate, Status


def cert(n: int, **changes: object) -> Certificate:
    made = Certificate(
        cert_no=f"2024010701{n:06d}",
        holder=f"holder {n}",
        manufacturer=f"manufacturer {n}",
        factory=f"factory {n}",
        product_code="0701",
        product_name="charger",
        models=(f"M-{n}", f"M-{n}X"),
        issued_on=date(2024, 1, 2),
        expires_on=date(2029, 1, 1),
        status=Status.VALID,
        status_changed_on=None,
        status_reason=None,
    )
    return made._replace(**changes)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class TestValues:
    def test_every_field_round_trips(self) -> None:
        every = cert(
            7,
            status=Status.SUSPENDED,
            status_changed_on=date(2025, 3, 4),
            status_reason="factory inspection failed",
        )

        assert len(values_of(every)) == len(Certificate._fields)
        assert certificate_of(values_of(every)) == every

    @pytest.mark.parametrize("status", list(Status))
    def test_every_status_round_trips(self, status: Status) -> None:
        assert certificate_of(values_of(cert(1, status=status))).status is status

    def test_equal_certificates_give_equal_values_and_others_do_not(self) -> None:
        assert values_of(cert(1)) == values_of(cert(1))
        assert values_of(cert(1)) != values_of(cert(1, status=Status.REVOKED))

    def test_values_are_left_alone_by_the_collector(self) -> None:
        values = values_of(cert(1))
        # Two passes: the first untracks the models tuple only after it has seen the outer one.
        gc.collect()
        gc.collect()

        assert not gc.is_tracked(values)


class TestCertificateCache:
    def test_an_answer_until_it_expires(self, clock: Clock) -> None:
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({cert(1).cert_no: cert(1)})

        assert cache.get(cert(1).cert_no, clock.now + 29.9) == cert(1)
        assert cache.get(cert(1).cert_no, clock.now + 30.0) is NOT_CACHED
        assert cache.get(cert(2).cert_no, clock.now) is NOT_CACHED

    def test_an_absence_is_kept_as_an_answer(self, clock: Clock) -> None:
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({"2024010701999999": None})

        assert cache.get("2024010701999999", clock.now) is None

    def test_the_oldest_go_first_beyond_the_size(self, clock: Clock) -> None:
        cache = CertificateCache(3, 30.0, timer=clock)
        for n in range(5):
            cache.put({cert(n).cert_no: cert(n)})

        assert len(cache) == 3
        assert [cache.get(cert(n).cert_no, clock.now) for n in range(5)] == [
            NOT_CACHED,
            NOT_CACHED,
            cert(2),
            cert(3),
            cert(4),
        ]

    def test_a_number_answered_again_moves_to_the_back(self, clock: Clock) -> None:
        cache = CertificateCache(2, 30.0, timer=clock)
        cache.put({cert(1).cert_no: cert(1)})
        cache.put({cert(2).cert_no: cert(2)})
        clock.now += 10
        cache.put({cert(1).cert_no: cert(1, status=Status.REVOKED)})
        cache.put({cert(3).cert_no: cert(3)})

        assert cache.get(cert(2).cert_no, clock.now) is NOT_CACHED
        assert cache.get(cert(1).cert_no, clock.now + 25) == cert(1, status=Status.REVOKED)

    def test_expired_entries_are_dropped_when_answers_are_put(self, clock: Clock) -> None:
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({cert(n).cert_no: cert(n) for n in range(4)})
        clock.now += 31
        cache.put({cert(9).cert_no: cert(9)})

        assert len(cache) == 1

    @pytest.mark.parametrize(
        "models",
        [
            (),
            ("",),
            ("A", ""),
            ("A\x1eB",),
            ("A", "A"),
            ("M-1",),
            tuple(f"M-{n}" for n in range(300)),
        ],
    )
    def test_models_come_back_as_they_went_in(self, clock: Clock, models: tuple[str, ...]) -> None:
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({cert(1).cert_no: cert(1, models=models)})

        assert cache.get(cert(1).cert_no, clock.now) == cert(1, models=models)

    def test_an_entry_holds_its_models_as_one_string(self, clock: Clock) -> None:
        many = tuple(f"MODEL-{n:04d}" for n in range(300))
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({cert(1).cert_no: cert(1, models=many)})
        entry = cache._entries[cert(1).cert_no]

        held = sum(map(sys.getsizeof, entry)) + sum(
            sys.getsizeof(inner) for value in entry if type(value) is tuple for inner in value
        )

        # 300 strings and a tuple of them would cost ~20 KiB; one string ~3.3.
        assert held < 4_000

    def test_the_entries_of_one_put_share_one_expiry(self, clock: Clock) -> None:
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({c.cert_no: c for c in (cert(1), cert(2))} | {cert(3).cert_no: None})

        # Compiled, a float made per entry would cost 24 bytes of each (pyproject.toml).
        assert len({id(entry[0]) for entry in cache._entries.values()}) == 1

    def test_size_zero_keeps_nothing(self, clock: Clock) -> None:
        cache = CertificateCache(0, 30.0, timer=clock)
        cache.put({cert(1).cert_no: cert(1)})

        assert len(cache) == 0
        assert cache.get(cert(1).cert_no, clock.now) is NOT_CACHED

    def test_clear(self, clock: Clock) -> None:
        cache = CertificateCache(10, 30.0, timer=clock)
        cache.put({cert(1).cert_no: cert(1)})
        cache.clear()

        assert cache.get(cert(1).cert_no, clock.now) is NOT_CACHED

    def test_a_full_cache_adds_almost_nothing_for_the_collector_to_walk(self) -> None:
        cache = CertificateCache(20_000, 30.0)
        answers = {c.cert_no: c for c in (cert(n) for n in range(10_000))}
        gc.collect()
        before = len(gc.get_objects())

        cache.put(answers)
        del answers
        gc.collect()

        # Kept as objects, 10,000 certificates would add at least 10,000 tracked objects.
        assert len(gc.get_objects()) - before < 100


def numbering(made: list[Certificate]) -> Callable[[Certificate], str]:
    """A `make` for Memo that notes each certificate it is called with."""

    def make(certificate: Certificate) -> str:
        made.append(certificate)
        return certificate.cert_no

    return make


class TestMemo:
    def test_equal_certificates_share_one_result(self) -> None:
        made: list[Certificate] = []
        memo = Memo(10, numbering(made))

        assert memo(cert(1)) == memo(cert(1)) == cert(1).cert_no
        assert memo(cert(1, status=Status.REVOKED)) == cert(1).cert_no
        assert made == [cert(1), cert(1, status=Status.REVOKED)]

    def test_the_same_certificate_asked_again_and_then_another(self) -> None:
        made: list[Certificate] = []
        memo = Memo(1, numbering(made))
        first, revoked = cert(1), cert(1, status=Status.REVOKED)

        assert [memo(first), memo(first), memo(revoked), memo(first)] == [cert(1).cert_no] * 4
        # Asked twice in a row it is made once; asked after `revoked` pushed it out of this
        # one-entry memo, it is made again, not taken from the last one asked for.
        assert made == [first, revoked, first]

    def test_bounded_first_in_first_out(self) -> None:
        made: list[Certificate] = []
        memo = Memo(2, numbering(made))
        for n in (1, 2, 3, 2, 1):
            memo(cert(n))

        assert made == [cert(n) for n in (1, 2, 3, 1)]

    def test_shared_between_threads(self) -> None:
        memo = Memo(50, lambda c: c.holder)
        failures: list[BaseException] = []

        def use(offset: int) -> None:
            try:
                for n in range(2_000):
                    assert memo(cert((n + offset) % 300)) == f"holder {(n + offset) % 300}"
            except BaseException as failure:  # reported by the main thread
                failures.append(failure)

        threads = [threading.Thread(target=use, args=(k * 37,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert failures == []


def test_a_memo_answers_what_it_holds_and_makes_but_does_not_keep_the_rest_when_asked() -> None:
    made: list[str] = []

    def make(c: Certificate) -> str:
        made.append(c.cert_no)
        return c.cert_no + "!"

    memo = Memo(4, make)
    kept, other = cert(1), cert(2)
    assert memo(kept) == "2024010701000001!"
    assert memo.unkept(kept) == "2024010701000001!"  # held: not made again
    assert memo.unkept(other) == memo.unkept(other) == "2024010701000002!"
    assert made == ["2024010701000001", "2024010701000002", "2024010701000002"]
    assert memo(other) == "2024010701000002!"  # made once more, and kept from now on
    assert memo.unkept(other) == "2024010701000002!"
    assert len(made) == 4
