"""Settings refuse unusable configuration (upstream sync, evidence) before anything starts."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from certcheck.config import Settings


class TestUpstreamSettings:
    @pytest.mark.parametrize(
        ("values", "reason"),
        [
            ({"sync_interval": 60}, "CERTCHECK_SYNC_INTERVAL is set but CERTCHECK_UPSTREAM_URL"),
            ({"upstream_url": "ftp://feed.test/"}, r"must be an http\(s\) URL"),
            ({"upstream_url": "https://"}, r"must be an http\(s\) URL with a host"),
            ({"upstream_url": "https://me:pw@feed.test/"}, "no user, password, query"),
            ({"upstream_url": "https://feed.test/?key=abc"}, "no user, password, query"),
            ({"upstream_url": "https://feed.test/#x"}, "no user, password, query"),
            (
                {"upstream_url": "http://feed.test/", "upstream_token": "t"},
                "would travel in clear text",
            ),
            ({"sync_page_timeout": 700}, "SYNC_PAGE_TIMEOUT exceeds CERTCHECK_SYNC_RUN_TIMEOUT"),
            ({"sync_backoff_base": 60}, "SYNC_BACKOFF_BASE exceeds CERTCHECK_SYNC_BACKOFF_MAX"),
            ({"sync_page_size": 0}, "greater than or equal to 1"),
            ({"sync_page_size": 5001}, "less than or equal to 5000"),
            ({"sync_max_bad_share": 1.5}, "less than or equal to 1"),
            ({"sync_max_response_bytes": 10}, "greater than or equal to 1024"),
            ({"sync_max_attempts": 0}, "greater than or equal to 1"),
            ({"sync_overlap": -1}, "greater than or equal to 0"),
        ],
    )
    def test_refused(self, values: dict[str, Any], reason: str) -> None:
        with pytest.raises(ValidationError, match=reason):
            Settings(**values)

    @pytest.mark.parametrize(
        "values",
        [
            {
                "upstream_url": "https://feed.test/api/v1",
                "upstream_token": "t",
                "sync_interval": 300,
            },
            {"upstream_url": "http://127.0.0.1:8900", "upstream_token": "t"},  # the fake upstream
            {"upstream_url": "http://feed.internal/"},  # no token to leak
        ],
    )
    def test_accepted(self, values: dict[str, Any]) -> None:
        assert Settings(**values).upstream_url == values["upstream_url"]

    def test_errors_do_not_show_the_token(self) -> None:
        with pytest.raises(ValidationError) as refused:
            Settings(upstream_url="http://feed.test/", upstream_token="sekrit-token")

        assert "sekrit-token" not in str(refused.value)


class TestEvidenceSettings:
    """What a crash may lose is one flush interval, and the contract bounds it at 2 seconds."""

    @pytest.mark.parametrize(
        ("values", "reason"),
        [
            ({"check_flush_seconds": 2.5}, "less than or equal to 2"),
            ({"check_flush_seconds": 0}, "greater than 0"),
            ({"check_buffer_full": "block"}, "'shed' or 'wait'"),
            ({"check_retention_days": 0}, "greater than or equal to 1"),
        ],
    )
    def test_refused(self, values: dict[str, Any], reason: str) -> None:
        with pytest.raises(ValidationError, match=reason):
            Settings(**values)

    def test_the_defaults_are_what_the_readme_states(self) -> None:
        settings = Settings()
        assert settings.check_flush_seconds == 0.25
        assert settings.check_buffer_full == "shed"
        assert settings.check_retention_days == 400
