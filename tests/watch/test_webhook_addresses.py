"""Where a webhook may point (watch/addresses.py): table-driven, no database."""

from __future__ import annotations

import ipaddress

import pytest

from certcheck.errors import WebhookUrlRefused
from certcheck.watch import addresses


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fd12:3456::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("ff02::1", False),
    ],
)
def test_only_addresses_reachable_on_the_internet_are_public(address: str, public: bool) -> None:
    assert addresses.is_public(ipaddress.ip_address(address)) is public


class TestParse:
    @pytest.mark.parametrize(
        ("url", "host_header", "pinned"),
        [
            ("https://hooks.example.com/x?y=1", "hooks.example.com", "https://9.9.9.9:443/x?y=1"),
            ("https://Hooks.Example.com:8443", "hooks.example.com:8443", "https://9.9.9.9:8443/"),
            ("https://[2001:db8::1]/h", "[2001:db8::1]", "https://9.9.9.9:443/h"),
            ("https://bücher.example/h", "xn--bcher-kva.example", "https://9.9.9.9:443/h"),
        ],
    )
    def test_the_request_goes_to_the_checked_address_for_the_named_host(
        self, url: str, host_header: str, pinned: str
    ) -> None:
        target = addresses.parse(url, allow_private=False)
        assert target.host_header == host_header
        assert target.pinned(ipaddress.ip_address("9.9.9.9")) == pinned
        v6 = target.pinned(ipaddress.ip_address("2001:db8::2"))
        assert v6.startswith("https://[2001:db8::2]:")

    def test_http_only_with_private_addresses_allowed(self) -> None:
        with pytest.raises(WebhookUrlRefused):
            addresses.parse("http://8.8.8.8/", allow_private=False)
        assert addresses.parse("http://127.0.0.1/", allow_private=True).port == 80


class TestResolve:
    async def test_a_name_is_refused_when_any_of_its_addresses_is_private(self) -> None:
        target = addresses.parse("https://localhost:8443/h", allow_private=False)
        with pytest.raises(WebhookUrlRefused, match="not a public address"):
            await addresses.resolve(target, allow_private=False)
        address = await addresses.resolve(target, allow_private=True)
        assert address.is_loopback
