"""The web page's security mechanics on their own: cookies, CSRF tokens, origins, client addresses."""

from __future__ import annotations

import ipaddress

import pytest

from adapters.web.config import WebSettings
from adapters.web.security import Session, Signer, client_ip, origin_of, same_origin

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def test_a_signed_cookie_names_its_session_and_any_change_is_refused() -> None:
    signer = Signer(b"k" * 32)
    cookie, sid = signer.cookie()
    assert signer.sid(cookie) == sid
    assert signer.cookie()[1] != sid  # every sign-in is a new session
    body, mac = cookie.rsplit(".", 1)
    flipped = body[:5] + ("A" if body[5] != "A" else "B") + body[6:]
    for bad in (f"{flipped}.{mac}", f"{body}.{mac[::-1]}", body, "", "a.b.c", f"{body}.", None):
        assert signer.sid(bad) is None
    assert Signer(b"other" * 8).sid(cookie) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    signer = Signer(b"k" * 32)
    one = Session("alice", 2000.0, signer.cookie()[1])
    two = Session("alice", 2000.0, signer.cookie()[1])
    assert signer.csrf_ok(one, signer.csrf_token(one))
    assert not signer.csrf_ok(one, signer.csrf_token(two))
    assert not signer.csrf_ok(one, "")
    assert not signer.csrf_ok(one, None)


@pytest.mark.parametrize(
    ("origin", "referer", "ok"),
    [
        ("https://photos.example.org", None, True),
        ("https://PHOTOS.example.org:443", None, True),
        ("http://photos.example.org", None, False),  # another scheme is another origin
        ("https://photos.example.org.evil.com", None, False),
        ("https://evil.com", "https://photos.example.org/", False),  # Origin wins when present
        (None, "https://photos.example.org/results/x", True),
        ("null", "https://photos.example.org/", True),
        (None, "https://evil.com/photos.example.org", False),
        (None, None, False),
    ],
)
def test_same_origin(origin: str | None, referer: str | None, ok: bool) -> None:
    assert same_origin("https://photos.example.org", origin, referer) is ok


def test_origin_of_keeps_non_default_ports() -> None:
    assert origin_of("http://127.0.0.1:8080/x?y") == "http://127.0.0.1:8080"
    assert origin_of("javascript:alert(1)") is None


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not from a proxy: the header is ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own claim is left of it
        ("10.0.0.2", "198.51.100.1, 10.0.0.9", "198.51.100.1"),  # two proxies of ours
        ("10.0.0.2", "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # nothing but proxies: the farthest
        ("10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),  # unreadable where our proxy wrote: the peer
        ("10.0.0.2", None, "10.0.0.2"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_client_ip_from_x_forwarded_for(peer: str, header: str | None, expected: str) -> None:
    assert client_ip(peer, header, PROXIES) == expected


def test_settings_parse_proxies_and_refuse_bad_ones() -> None:
    parsed = WebSettings(_env_file=None, trusted_proxies="10.0.0.0/8, 127.0.0.1")  # type: ignore[call-arg, arg-type]
    assert [str(n) for n in parsed.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    with pytest.raises(ValueError, match="CIDR"):
        WebSettings(_env_file=None, trusted_proxies="10.0.0.0/33")  # type: ignore[call-arg, arg-type]
    with pytest.raises(ValueError, match="http"):
        WebSettings(_env_file=None, public_url="photos.example.org")  # type: ignore[call-arg]
    assert WebSettings(_env_file=None, public_url="https://p.example/").secure_cookies  # type: ignore[call-arg]
