"""PUT, GET and DELETE /v1/watch/webhook: the secret, the state, and the URLs refused."""

from __future__ import annotations

import base64

import httpx
import pytest
from fastapi import FastAPI

from certcheck.config import Settings
from tests.api.helpers import assert_problem
from tests.conftest import FUNCTIONAL_DB_TIMEOUT
from tests.watch.webhook_helpers import register, status

PUBLIC = "https://8.8.8.8/certcheck/events?key=1"  # an address literal: no DNS needed


@pytest.fixture
def url(app: FastAPI) -> str:
    return app.url_path_for("put_watch_webhook")


class TestRegister:
    async def test_the_secret_is_whsec_and_the_base64_of_enough_random_bytes(
        self, client: httpx.AsyncClient, shop: dict[str, str]
    ) -> None:
        first = await register(client, shop, PUBLIC)
        second = await register(client, shop, PUBLIC.replace("8.8.8.8", "1.1.1.1"))
        for secret in (first, second):
            assert secret.startswith("whsec_")
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            assert 24 <= len(key) <= 64
        assert first != second  # a second PUT issues a new secret
        state = await status(client, shop)
        assert state == {
            "url": "https://1.1.1.1/certcheck/events?key=1",
            "pending": 0,
            "failing_since": None,
            "dead_lettered": 0,
        }

    @pytest.mark.parametrize(
        "refused",
        [
            "http://8.8.8.8/hook",  # not https
            "ftp://8.8.8.8/hook",
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://10.1.2.3/hook",
            "https://192.168.0.10/hook",
            "https://169.254.169.254/latest/meta-data",  # cloud metadata
            "https://100.64.0.1/hook",  # shared address space
            "https://[::ffff:10.0.0.1]/hook",
            "https://[fd00::1]/hook",
            "https://0.0.0.0/hook",
            "https://localhost/hook",  # a name resolving to loopback
            "https://user:pass@8.8.8.8/hook",
            "https://8.8.8.8/hook#fragment",
            "https:///hook",
            "https://8.8.8.8:99999/hook",
            "https://name.invalid/hook",  # does not resolve
            "https://8.8.8.8/" + "a" * 2100,
        ],
    )
    async def test_a_url_that_is_not_https_to_a_public_address_is_refused(
        self, client: httpx.AsyncClient, shop: dict[str, str], url: str, refused: str
    ) -> None:
        response = await client.put(url, json={"url": refused}, headers=shop)
        code = "VALIDATION_FAILED" if len(refused) > 2048 else "WEBHOOK_URL_REFUSED"
        assert_problem(response, 422, code)
        assert (await client.get(url, headers=shop)).status_code == 404

    async def test_a_body_that_is_not_a_url_object_is_refused(
        self, client: httpx.AsyncClient, shop: dict[str, str], url: str
    ) -> None:
        assert_problem(await client.put(url, json={}, headers=shop), 422, "VALIDATION_FAILED")
        twice = b'{"url": 1, "url": 2}'
        bad = await client.put(
            url, content=twice, headers={**shop, "content-type": "application/json"}
        )
        assert_problem(bad, 422, "INVALID_JSON")


class TestPrivateAllowed:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            watch_processor=False,
            webhook_allow_private=True,
            db_timeout=FUNCTIONAL_DB_TIMEOUT,
        )

    async def test_http_and_loopback_are_accepted_with_the_setting(
        self, client: httpx.AsyncClient, shop: dict[str, str]
    ) -> None:
        await register(client, shop, "http://127.0.0.1:9/hook")
        assert (await status(client, shop))["url"] == "http://127.0.0.1:9/hook"


class TestReadAndRemove:
    async def test_none_registered_is_404(
        self, client: httpx.AsyncClient, shop: dict[str, str], url: str
    ) -> None:
        assert_problem(await client.get(url, headers=shop), 404, "WEBHOOK_NOT_FOUND")
        assert_problem(await client.delete(url, headers=shop), 404, "WEBHOOK_NOT_FOUND")

    async def test_delete_removes_it_and_other_platforms_never_see_it(
        self, client: httpx.AsyncClient, shop: dict[str, str], other: dict[str, str], url: str
    ) -> None:
        await register(client, shop, PUBLIC)
        assert_problem(await client.get(url, headers=other), 404, "WEBHOOK_NOT_FOUND")
        assert_problem(await client.delete(url, headers=other), 404, "WEBHOOK_NOT_FOUND")
        assert "secret" not in await status(client, shop)
        assert (await client.delete(url, headers=shop)).status_code == 204
        assert_problem(await client.get(url, headers=shop), 404, "WEBHOOK_NOT_FOUND")
