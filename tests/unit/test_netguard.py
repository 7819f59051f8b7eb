"""The SSRF guard, and the webhook connector refusing non-public targets before sending."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors._netguard import BlockedTarget, InvalidTarget, UnresolvedHost, check_url
from connectors.base import ConnectorEnv, Destination, SendResult
from connectors.webhook import WebhookConnector
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action

PUBLIC = "93.184.215.14"


def resolver(table: Mapping[str, Sequence[str]]) -> Any:
    """A DNS double: names resolve from `table`; anything else is unknown (like NXDOMAIN)."""

    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise UnresolvedHost(host, "gaierror")
        return table[host]

    return resolve


NO_DNS = resolver({})


# --- literal addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1/", id="ipv4-loopback"),
        pytest.param("http://127.8.9.10:8080/x", id="ipv4-loopback-range"),
        pytest.param("http://0.0.0.0/", id="ipv4-unspecified"),
        pytest.param("http://10.1.2.3/", id="rfc1918-10"),
        pytest.param("http://172.16.0.1/", id="rfc1918-172-16"),
        pytest.param("http://172.31.255.254/", id="rfc1918-172-31"),
        pytest.param("https://192.168.1.1/", id="rfc1918-192-168"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
        pytest.param("http://224.0.0.1/", id="ipv4-multicast"),
        pytest.param("http://100.64.0.1/", id="carrier-grade-nat"),
        pytest.param("http://[::1]/", id="ipv6-loopback"),
        pytest.param("http://[::]/", id="ipv6-unspecified"),
        pytest.param("http://[fe80::1]/", id="ipv6-link-local"),
        pytest.param("http://[fc00::1]/", id="ipv6-unique-local-fc"),
        pytest.param("http://[fd12:3456::1]/", id="ipv6-unique-local-fd"),
        pytest.param("http://[ff02::1]/", id="ipv6-multicast"),
        pytest.param("http://[::ffff:127.0.0.1]/", id="ipv4-mapped-loopback"),
        pytest.param("http://[::ffff:a9fe:a9fe]/", id="ipv4-mapped-metadata"),
        pytest.param("http://[2002:7f00:1::]/", id="6to4-of-loopback"),
        pytest.param("http://2130706433/", id="decimal-loopback"),
        pytest.param("http://0177.0.0.1/", id="octal-loopback"),
        pytest.param("http://0x7f.1/", id="hex-short-loopback"),
        pytest.param("http://127.1/", id="short-form-loopback"),
        pytest.param("http://0xa9fea9fe/", id="hex-metadata"),
    ],
)
def test_non_public_literal_addresses_are_refused_without_dns(url: str) -> None:
    with pytest.raises(BlockedTarget) as caught:
        check_url(url, resolver=NO_DNS)

    assert caught.value.reason
    assert caught.value.address in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"https://{PUBLIC}/hook", id="public-ipv4"),
        pytest.param("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/", id="public-ipv6"),
        pytest.param(f"http://[::ffff:{PUBLIC}]/", id="ipv4-mapped-public"),
    ],
)
def test_public_literal_addresses_pass(url: str) -> None:
    check_url(url, resolver=NO_DNS)


def test_the_reason_names_the_kind_of_address() -> None:
    with pytest.raises(BlockedTarget, match="link-local"):
        check_url("http://169.254.169.254/", resolver=NO_DNS)
    with pytest.raises(BlockedTarget, match="loopback"):
        check_url("http://[::ffff:127.0.0.1]/", resolver=NO_DNS)
    with pytest.raises(BlockedTarget, match="private"):
        check_url("http://10.0.0.1/", resolver=NO_DNS)


# --- names -----------------------------------------------------------------------------------


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    dns = resolver({"internal.example.com": ["10.0.0.7"]})

    with pytest.raises(BlockedTarget) as caught:
        check_url("https://internal.example.com/hook", resolver=dns)

    assert caught.value.host == "internal.example.com"
    assert caught.value.address == "10.0.0.7"


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    # The connection may pick any of them, so every address must be public.
    dns = resolver({"mixed.example.com": [PUBLIC, "::1"]})

    with pytest.raises(BlockedTarget, match="loopback"):
        check_url("https://mixed.example.com/", resolver=dns)


def test_localhost_is_refused_through_the_resolver() -> None:
    dns = resolver({"localhost": ["127.0.0.1", "::1"]})

    with pytest.raises(BlockedTarget):
        check_url("http://localhost:6379/", resolver=dns)


def test_a_name_resolving_to_public_addresses_passes() -> None:
    dns = resolver({"hooks.example.com": [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})

    check_url("https://hooks.example.com/in", resolver=dns)


def test_the_resolver_is_asked_with_the_url_port() -> None:
    asked: list[tuple[str, int]] = []

    def dns(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [PUBLIC]

    check_url("https://hooks.example.com/", resolver=dns)
    check_url("http://hooks.example.com:8080/", resolver=dns)

    assert asked == [("hooks.example.com", 443), ("hooks.example.com", 8080)]


def test_an_unresolvable_name_is_reported_as_such() -> None:
    with pytest.raises(UnresolvedHost):
        check_url("https://nowhere.invalid/", resolver=NO_DNS)


def test_an_empty_answer_is_unresolved_not_allowed() -> None:
    with pytest.raises(UnresolvedHost):
        check_url("https://empty.example.com/", resolver=resolver({"empty.example.com": []}))


#: URLs no retry can make usable, each with what its refusal must say. Obfuscated forms of
#: a non-public address are refused as that address; the rest as unusable.
UNUSABLE_URLS = {
    "http://0177.0.0.1/": "127.0.0.1) is a loopback address",
    "http://0177.0.0.1:8080/T0-path-token": "127.0.0.1) is a loopback address",
    "http://0x7f000001/": "127.0.0.1) is a loopback address",
    "http://0x7f.0.0.1/": "127.0.0.1) is a loopback address",
    "http://017700000001/": "127.0.0.1) is a loopback address",
    "http://2852039166/latest/meta-data/": "169.254.169.254) is a link-local address",
    "http://0251.0376.0251.0376/": "169.254.169.254) is a link-local address",
    "http://0/": "0.0.0.0) is an unspecified address",
    "http://[::ffff:127.0.0.1]/": "is a loopback address (embedded in IPv6)",
    "http://[::ffff:7f00:1]/": "is a loopback address (embedded in IPv6)",
    "http://[::ffff:a9fe:a9fe]/": "is a link-local address (cloud metadata lives here) (embedded",
    "http://[::1": "cannot be parsed",
    "http://[::1]:8080:9/": "::1 is a loopback address",
    "http://": "has no host",
    "http:///T0-path-token": "has no host",
    "http://user@:80/": "has no host",
    "https://:443/": "has no host",
    "http://example.com:99999/": "port 99999 is not between 1 and 65535",
    "http://example.com:65536/": "port 65536 is not between 1 and 65535",
    "http://example.com:0/": "port 0 is not between 1 and 65535",
    "http://example.com:123456789012345678901234567890/": "is not between 1 and 65535",
    "http://example.com:http/": "cannot be parsed",
    "http://256.1.1.1/": "cannot be parsed",
    "http://a\x00b.example.com/": "cannot be parsed",
    "http://xn--/": "cannot be parsed",
    "ftp://example.com/": "scheme must be http or https (it is 'ftp')",
    "file:///etc/passwd": "scheme must be http or https (it is 'file')",
    "gopher://127.0.0.1:6379/_FLUSHALL": "scheme must be http or https (it is 'gopher')",
    "ws://example.com/": "scheme must be http or https (it is 'ws')",
    "javascript:alert(1)": "scheme must be http or https (it is 'javascript')",
    "example.com/T0-path-token": "scheme must be http or https (it is none)",
    "//example.com/": "scheme must be http or https (it is none)",
    "": "scheme must be http or https (it is none)",
    "not a url": "scheme must be http or https (it is none)",
}
PUBLIC_DNS = resolver({"example.com": [PUBLIC]})


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_unusable_and_obfuscated_urls_are_refused_before_dns(url: str) -> None:
    with pytest.raises((BlockedTarget, InvalidTarget)) as caught:
        check_url(url, resolver=PUBLIC_DNS)

    assert UNUSABLE_URLS[url] in str(caught.value)


@pytest.mark.parametrize("secret", [False, True], ids=["plain", "secret"])
@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_the_webhook_connector_fails_an_unusable_url_with_its_reason_never_retries(
    url: str, secret: bool
) -> None:
    # http://0177.0.0.1/ raised in the connector before the guard ran: retried for ever.
    value = Secret(url, origin="env:HOOK_URL") if secret else url

    result, requests = _send(value, PUBLIC_DNS)

    assert (result.outcome, requests) == ("fail", 0), result
    assert UNUSABLE_URLS[url] in result.reason
    assert "T0-path-token" not in result.reason


@pytest.mark.parametrize("url", [u for u, why in UNUSABLE_URLS.items() if "address" not in why])
def test_an_unusable_url_fails_even_where_private_networks_are_allowed(url: str) -> None:
    result, requests = _send(url, PUBLIC_DNS, allow_private_network=True)

    assert (result.outcome, requests) == ("fail", 0), result
    assert UNUSABLE_URLS[url] in result.reason


# --- the webhook connector ---------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
URL_TOKEN = "T0-guard-url-token-not-real"


def _send(url: str | Secret, dns: Any, **options: Any) -> tuple[SendResult, int]:
    destination = Destination(name="orders", connector="webhook", options={"url": url, **options})
    ctx = delivery_context(destination, now=NOW, rule_id="r", idempotency_key="k" * 64)
    action = rendered_action("webhook", "orders", {"body": {}}, destination_param="to")
    router = respx.Router(assert_all_called=False)
    router.route().respond(204)

    async def run() -> SendResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http:
            connector = WebhookConnector(ConnectorEnv(http=http, base_dir=Path(".")), resolver=dns)
            return await connector.send(action, ctx)

    return asyncio.run(run()), len(router.calls)


def test_a_private_target_fails_without_a_request_and_says_how_to_allow_it() -> None:
    result, requests = _send("http://10.0.0.5/hook", NO_DNS)

    assert result.outcome == "fail"
    assert requests == 0
    assert "private" in result.reason
    assert "allow_private_network" in result.reason


def test_a_secret_url_on_a_private_host_is_refused_without_leaking_its_token() -> None:
    dns = resolver({"hooks.internal": ["192.168.0.9"]})

    result, requests = _send(Secret(f"https://hooks.internal/in/{URL_TOKEN}?k={URL_TOKEN}"), dns)

    assert result.outcome == "fail"
    assert requests == 0
    assert URL_TOKEN not in result.reason
    assert URL_TOKEN not in repr(result)


def test_allow_private_network_lets_an_on_prem_receiver_through() -> None:
    result, requests = _send("http://127.0.0.1:9/hook", NO_DNS, allow_private_network=True)

    assert result.outcome == "ok"
    assert requests == 1


def test_a_public_target_is_sent() -> None:
    result, requests = _send(
        "https://hooks.example.com/in", resolver({"hooks.example.com": [PUBLIC]})
    )

    assert result.outcome == "ok"
    assert requests == 1


def test_a_dns_failure_is_retried_not_failed() -> None:
    result, requests = _send("https://flaky.example.com/in", NO_DNS)

    assert result.outcome == "retry"
    assert requests == 0
    assert "flaky.example.com" in result.reason
