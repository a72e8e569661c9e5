"""The benchmark's input: a demo registry and listings that reference it the way a platform's
catalogue would (mostly valid, some with the wrong model, not found, malformed or without a
number), written as NDJSON, the same lines for the batch endpoint and the job."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

from certcheck.verification.catalogue import load_catalogue

# Merchants type full-width digits; certcheck must read them (api.md, normalisation).
_FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def registry_numbers(snapshot: Path) -> list[tuple[str, str, list[str]]]:
    """(cert_no, product_code, models) of each certificate in a demo snapshot (.csv.gz)."""
    with gzip.open(snapshot, "rt", encoding="utf-8", newline="") as text:
        return [
            (row["cert_no"], row["product_code"], row["models"].split("|"))
            for row in csv.DictReader(text)
        ]


def write_listings(path: Path, count: int, certificates: list[tuple[str, str, list[str]]]) -> None:
    rng = random.Random(20261123)
    codes = sorted(load_catalogue().products)
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            listing = _listing(rng, number, certificates, codes)
            out.write(json.dumps(listing, ensure_ascii=False) + "\n")


_Certificate = tuple[str, str, list[str]]


def _listing(
    rng: random.Random, number: int, certificates: list[_Certificate], codes: list[str]
) -> dict[str, str]:
    cert_no, product_code, models = rng.choice(certificates)
    listing = {"listing_id": f"sku-{number}", "merchant_id": f"shop-{number % 997}"}
    roll = rng.random()
    if roll < 0.70:
        listing |= {"cert_no": cert_no, "product_code": product_code, "model": rng.choice(models)}
    elif roll < 0.73:
        listing |= {"cert_no": "CCC: " + cert_no.translate(_FULL_WIDTH), "model": models[0]}
    elif roll < 0.83:
        listing |= {"cert_no": cert_no, "model": "ZZ-" + str(rng.randrange(1000))}
    elif roll < 0.91:
        listing |= {"cert_no": f"2023{rng.randrange(10**12):012d}"}
    elif roll < 0.96:
        listing |= {"cert_no": rng.choice(["N/A", "pending", "2023-01-09-1234", "见包装"])}
    else:
        listing |= {"product_code": rng.choice(codes)}
    return listing


def batches(path: Path, size: int) -> Iterator[bytes]:
    """The listings as POST /v1/verify/batch bodies of `size` items, one at a time."""
    with path.open("rb") as lines:
        while group := [line.rstrip(b"\n") for _, line in zip(range(size), lines, strict=False)]:
            yield b'{"items":[' + b",".join(group) + b"]}"


def gzip_file(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as source, gzip.open(target, "wb", compresslevel=6) as out:
        while block := source.read(1 << 20):
            out.write(block)
    return target
