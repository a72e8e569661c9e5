"""The fake upstream: its fault grammar, its items, and its paging (in process, over ASGI)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from certcheck.sync.fake_upstream import FakeUpstream, Fault, load_items, parse_fault
from certcheck.sync.feedpage import parse_timestamp
from tests.factories import cert
from tests.feeds import items_of, write_jsonl

ITEMS = items_of(cert(f"2024010901{n:06d}") for n in range(5))


class TestParseFault:
    @pytest.mark.parametrize(
        ("spec", "fault"),
        [
            ("503", Fault("503")),
            ("503@1", Fault("503", request=1)),
            ("429:2@3", Fault("429", arg=2, request=3)),
            ("trickle:0.05@page2", Fault("trickle", arg=0.05, page=2)),
            ("truncate@page1", Fault("truncate", page=1)),
            ("bad-status:3", Fault("bad-status", arg=3)),
            ("loop", Fault("loop")),
            ("as-of-back@page2", Fault("as-of-back", page=2)),
            ("invalid-json", Fault("invalid-json")),
        ],
    )
    def test_reads_kind_argument_and_when(self, spec: str, fault: Fault) -> None:
        assert parse_fault(spec) == fault

    @pytest.mark.parametrize("spec", ["", "teapot", "503@", "503@page", "loop@p2", "50"])
    def test_refuses_what_it_cannot_read(self, spec: str) -> None:
        with pytest.raises(ValueError, match="cannot read the fault"):
            parse_fault(spec)

    @pytest.mark.parametrize(
        ("fault", "number", "page", "applies"),
        [
            (Fault("503"), 7, 3, True),
            (Fault("503", request=1), 1, 1, True),
            (Fault("503", request=1), 2, 1, False),
            (Fault("loop", page=2), 5, 2, True),
            (Fault("loop", page=2), 2, 1, False),
        ],
    )
    def test_applies_to_its_request_or_page(
        self, fault: Fault, number: int, page: int, applies: bool
    ) -> None:
        assert fault.applies(number, page) is applies


class TestLoadItems:
    def test_rows_without_updated_at_get_one_in_file_order(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.csv"
        path.write_text(
            "cert_no,status,holder,models\n"
            "2024010901000002,valid,B,XK-1|XK-2\n"
            "2024010901000001,bogus,A,\n",
            encoding="utf-8",
        )

        items = load_items(path)

        assert [i["cert_no"] for i in items] == ["2024010901000002", "2024010901000001"]
        assert items[0]["models"] == ["XK-1", "XK-2"]
        assert items[1]["status"] == "bogus"  # served raw, as an upstream might
        first, second = (parse_timestamp(i["updated_at"]) for i in items)
        assert first is not None
        assert second is not None
        assert first < second

    def test_rows_keep_their_own_updated_at_and_are_sorted(self, tmp_path: Path) -> None:
        path = write_jsonl(tmp_path / "feed.jsonl", [ITEMS[3], ITEMS[0], ITEMS[1]])

        assert load_items(path) == [ITEMS[0], ITEMS[1], ITEMS[3]]


async def get(fake: FakeUpstream, **params: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as client:
        return await client.get("/certificates", params=params)


class TestPaging:
    async def test_pages_through_everything(self) -> None:
        fake = FakeUpstream(ITEMS, [])

        first = (await get(fake, page_size="2")).json()
        last = (await get(fake, page_size="2", page_token="o4")).json()

        assert (first["items"], first["next_page_token"]) == (ITEMS[:2], "o2")
        assert (last["items"], last["next_page_token"]) == (ITEMS[4:], None)
        assert parse_timestamp(first["as_of"]) is not None

    async def test_only_what_changed_after_updated_since(self) -> None:
        fake = FakeUpstream(ITEMS, [])

        page = (await get(fake, updated_since=ITEMS[2]["updated_at"])).json()

        assert page["items"] == ITEMS[3:]

    @pytest.mark.parametrize(
        ("params", "status"),
        [({"page_token": "bogus"}, 400), ({"updated_since": "yesterday"}, 400)],
    )
    async def test_bad_parameters(self, params: dict[str, str], status: int) -> None:
        assert (await get(FakeUpstream(ITEMS, []), **params)).status_code == status

    async def test_a_token_is_required_when_set(self) -> None:
        fake = FakeUpstream(ITEMS, [], token="t0ken")
        transport = httpx.ASGITransport(app=fake)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as client:
            refused = await client.get("/certificates")
            served = await client.get("/certificates", headers={"Authorization": "Bearer t0ken"})

        assert (refused.status_code, served.status_code) == (401, 200)


class TestFaults:
    async def test_a_status_fault_once(self) -> None:
        fake = FakeUpstream(ITEMS, [parse_fault("503:4@1")])

        first, second = await get(fake), await get(fake)

        assert (first.status_code, first.headers["retry-after"]) == (503, "4")
        assert second.status_code == 200

    async def test_loop_repeats_the_page_token(self) -> None:
        fake = FakeUpstream(ITEMS, [parse_fault("loop@page2")])

        page = (await get(fake, page_size="2", page_token="o2")).json()

        assert page["next_page_token"] == "o2"

    async def test_bad_status_spoils_the_first_items(self) -> None:
        fake = FakeUpstream(ITEMS, [parse_fault("bad-status:1")])

        page = (await get(fake, page_size="2")).json()

        assert [i["status"] for i in page["items"]] == ["no-such-status", "valid"]

    async def test_as_of_back_is_a_day_old(self) -> None:
        fake = FakeUpstream(ITEMS, [parse_fault("as-of-back")])

        as_of = parse_timestamp((await get(fake)).json()["as_of"])

        assert as_of is not None
        assert as_of < datetime.now(UTC) - timedelta(hours=23)

    async def test_invalid_json_is_well_framed(self) -> None:
        response = await get(FakeUpstream(ITEMS, [parse_fault("invalid-json")]))

        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
