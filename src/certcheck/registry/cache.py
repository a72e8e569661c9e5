"""The certificate cache: answers by number for a while, with nothing the cyclic collector walks.

A full cache holds 200,000 entries. Kept as objects (a `Certificate` each, and cachetools'
link object each), every full pass of the collector walked ~400,000 of them: 340-390 ms of
held event loop, every few seconds while check records were buffered. Here an entry is one exact
tuple of strings, dates and a float (the models joined into one string: they are most of
what a certificate holds alone), which CPython stops tracking at its first young
collection, in an OrderedDict, whose order is kept in plain C memory: a full pass walks one
dict. The price is a `Certificate` made again on each hit (~0.6 us), so what is worth keeping
per certificate (its JSON) is kept by its values (`Memo`), not by the object.

Every entry lives the same TTL, so insertion order is expiry order: the expired and the oldest
beyond the size are both at the front, and a number answered again moves to the back.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

from certcheck.verification.records import STATUS_OF, STATUS_TEXT, Certificate

# Certificates whose derived values a Memo keeps: a busy platform's hot set, with room to spare.
MEMO_SIZE = 16_384
T = TypeVar("T")

Values = tuple[Any, ...]


class Missing(enum.Enum):
    NOT_CACHED = enum.auto()


NOT_CACHED: Final = Missing.NOT_CACHED


class CertificateCache:
    def __init__(
        self, size: int, ttl: float, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._size = size
        self._ttl = ttl
        self._timer = timer
        # number -> (expires, *values): one tuple, not a tuple holding another (48 bytes less
        # an entry); (expires,) when the registry has no such number (an absence is an answer).
        self._entries: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> float:
        return self._timer()

    def get(self, cert_no: str, now: float) -> Certificate | Missing | None:
        """The cached answer for `cert_no`, or NOT_CACHED; `now` from `self.now()`."""
        entry = self._entries.get(cert_no)
        if entry is None or entry[0] <= now:
            return NOT_CACHED
        return None if len(entry) == 1 else certificate_of(entry[1:])

    def put(self, answers: Mapping[str, Certificate | None]) -> None:
        now = self._timer()
        # An object, not a float: compiled (pyproject.toml), a float is a C double boxed anew
        # for each tuple it goes into, 24 bytes an entry; every entry of a put shares this one.
        expires: object = now + self._ttl
        entries = self._entries
        for cert_no, cert in answers.items():
            entries.pop(cert_no, None)  # to the back: the order stays the order of expiry
            entries[cert_no] = (expires,) if cert is None else (expires, *_packed(values_of(cert)))
        while entries:
            first = next(iter(entries))
            if len(entries) <= self._size and entries[first][0] > now:
                break
            del entries[first]

    def clear(self) -> None:
        self._entries.clear()


class Memo(Generic[T]):
    """`make(certificate)` kept for the last `size` different certificates, by their values.
    Safe to share between threads (check records are made in a worker thread)."""

    def __init__(self, size: int, make: Callable[[Certificate], T]) -> None:
        self._size = size
        self._make = make
        # Not a dict: taking a dict's first key walks past the slots its deletions left, so a
        # memo that evicts on every call (a re-check job's distinct certificates) went quadratic.
        self._kept: OrderedDict[Values, T] = OrderedDict()
        self._lock = threading.Lock()
        # The last certificate asked for and what was made of it: a verify asks twice for the
        # one certificate object (its record, then its answer), and `is` costs nothing beside
        # the values' tuple and its hash. One tuple, so a thread reads a pair that belongs.
        self._last: tuple[Certificate, T] | None = None

    def __call__(self, cert: Certificate) -> T:
        last = self._last
        if last is not None and last[0] is cert:
            return last[1]
        key = values_of(cert)
        try:
            made = self._kept[key]
        except KeyError:
            made = self._make(cert)
            with self._lock:  # size check and eviction as one: two threads could pop one each
                if len(self._kept) >= self._size:
                    self._kept.popitem(last=False)  # the oldest: first in, first out
                self._kept[key] = made
        self._last = (cert, made)
        return made

    def unkept(self, cert: Certificate) -> T:
        """What `self(cert)` gives, but a certificate not kept is made without keeping it:
        for a re-check job, whose certificates, each read once, would push out the kept
        ones of the real-time checks."""
        made = self._kept.get(values_of(cert))
        return self._make(cert) if made is None else made


def values_of(cert: Certificate) -> Values:
    """The certificate as one exact tuple of strings, dates and None: equal for equal
    certificates, and untracked by the collector. The status is its text: an enum member is an
    object the collector tracks, and a tuple holding one stays tracked."""
    return (
        cert.cert_no,
        cert.holder,
        cert.manufacturer,
        cert.factory,
        cert.product_code,
        cert.product_name,
        cert.models,
        cert.issued_on,
        cert.expires_on,
        STATUS_TEXT[cert.status],
        cert.status_changed_on,
        cert.status_reason,
    )


# Between a certificate's models in a cache entry: not a character any registry text carries.
_MODELS_SEPARATOR: Final = "\x1e"
# Where values_of (a certificate's own field order) puts the two values a cache entry changes.
_MODELS_AT: Final = Certificate._fields.index("models")
_STATUS_AT: Final = Certificate._fields.index("status")
_new_tuple = tuple.__new__  # a named tuple made from a list of its fields (certificate_of)


def _packed(values: Values) -> Values:
    """`values` with the models as one string: a certificate's models are what it holds alone
    (its holder, factory and dates it shares, and compact.py holds those once), and one string
    costs ~50 bytes where a tuple of them costs ~60 a model and ~60 more; hundreds of models
    are common. Models that the joined string could not tell apart stay a tuple."""
    models = values[_MODELS_AT]
    if not all(models) or any(_MODELS_SEPARATOR in model for model in models):
        return values
    return (*values[:_MODELS_AT], _MODELS_SEPARATOR.join(models), *values[_MODELS_AT + 1 :])


def certificate_of(values: Values) -> Certificate:
    """The certificate of `values_of`, or of the same values `_packed`."""
    fields = list(values)
    models = fields[_MODELS_AT]
    if type(models) is str:
        fields[_MODELS_AT] = tuple(models.split(_MODELS_SEPARATOR)) if models else ()
    fields[_STATUS_AT] = STATUS_OF[fields[_STATUS_AT]]
    # The tuple made directly: the named tuple's own __new__ is a Python call with twelve
    # arguments (1.9 us a hit against 0.6, bench/README.md, twenty-first pass).
    return _new_tuple(Certificate, fields)
