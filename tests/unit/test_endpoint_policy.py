"""The endpoint address policy (spec 4.3; issue point 14): the ranges it refuses, IPv6 forms of
refused IPv4 addresses, and DNS rebinding (the host is resolved once: the call connects to the
checked address, with the real Host and TLS server name)."""

import ipaddress

import httpx
import pytest

from straitruns.adapters.executor import EndpointRefused, HttpExecutor
from straitruns.domain.endpoint_policy import refusal

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    "address",
    [
        "100.64.0.1",
        "100.100.100.200",  # a metadata address inside carrier-grade NAT space
        "192.0.0.170",
        "168.63.129.16",
        "169.254.169.254",
        "fd00:ec2::254",
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:0a00:0001::",  # 6to4 of 10.0.0.1
        "2002:6440:0001::",  # 6to4 of 100.64.0.1
        "::ffff:127.0.0.1",
        "::ffff:100.64.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "fec0::1",
        "127.0.0.1",
        "10.1.2.3",
        "::1",
        "fe80::1%eth0",
    ],
)
def test_a_refused_address_is_refused_in_every_form(address: str) -> None:
    reason = refusal([address], allow_private=False)
    assert reason is not None
    assert str(ipaddress.ip_address(address.split("%")[0])) in reason


@pytest.mark.parametrize("address", [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946", "2002:5db8:d822::"])
def test_a_public_address_is_allowed(address: str) -> None:
    assert refusal([address], allow_private=False) is None


def test_one_refused_address_among_public_ones_refuses_the_host() -> None:
    assert refusal([PUBLIC, "100.64.0.1"], allow_private=False)


class RebindingResolver:
    """Answers a public address first, then a metadata address (DNS rebinding)."""

    def __init__(self) -> None:
        self.answers = [[PUBLIC], ["169.254.169.254"]]
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


def executor_seeing(requests: list[httpx.Request], resolver: RebindingResolver) -> HttpExecutor:
    executor = HttpExecutor(allow_private=False, resolver=resolver)

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"ok": True})

    executor.client = httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=False)
    return executor


@pytest.mark.parametrize("url", ["https://jobs.example.test/run?x=1", "http://jobs.example.test:8443/run"])
def test_the_call_connects_to_the_checked_address_with_the_real_host_and_server_name(url: str) -> None:
    requests: list[httpx.Request] = []
    resolver = RebindingResolver()
    executor = executor_seeing(requests, resolver)

    executor.check_url(url)
    result = executor.call(url, b"{}", {}, timeout_secs=5)

    assert result.outcome.status == 200
    assert resolver.calls == 1
    [sent] = requests
    assert sent.url.host == PUBLIC
    assert sent.url.path == "/run"
    assert sent.headers["host"] == url.split("/")[2]
    if url.startswith("https"):
        assert sent.extensions["sni_hostname"] == "jobs.example.test"


def test_a_call_without_a_check_resolves_and_checks_itself() -> None:
    requests: list[httpx.Request] = []
    resolver = RebindingResolver()
    resolver.answers = [["169.254.169.254"]]
    executor = executor_seeing(requests, resolver)

    result = executor.call("https://jobs.example.test/run", b"{}", {}, timeout_secs=5)

    assert requests == []
    assert result.outcome.error is not None
    assert "metadata" in result.outcome.error
    with pytest.raises(EndpointRefused):
        executor.check_url("https://jobs.example.test/run")
