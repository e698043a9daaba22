"""The web page's security mechanics: signed session cookies, CSRF tokens, origins, client IPs.

A session cookie names a random session id and nothing else, signed (HMAC-SHA256) so a forged or
altered cookie is refused before any lookup. Whose session it is and until when lives in the
session's record in the result store (`adapters.web.sessions`), checked on every request: a copy
of the cookie is worth nothing once the record has ended. A CSRF token is derived from the
session id (a form from another site cannot know it), and every POST must also come from our own
origin (`Origin`, else `Referer`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from adapters.web.config import Network

SESSION_COOKIE = "pd_session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the account, when the sign-in ends (epoch s) and the session's own id.

    In proxy mode there is no cookie: the sid is the account itself, vouched for by the proxy.
    """

    account: str
    expires_at: float
    sid: str


class Signer:
    """Signs and checks session cookies and derives CSRF tokens, all from one secret key."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"photodetective-web-session\x00" + secret).digest()
        self._csrf_key = hashlib.sha256(b"photodetective-web-csrf\x00" + secret).digest()

    def cookie(self) -> tuple[str, str]:
        """A new session id and the signed cookie naming it: (cookie, sid)."""
        sid = secrets.token_urlsafe(24)
        body = _b64(sid.encode())
        return f"{body}.{self._mac(body)}", sid

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def sid(self, cookie: str | None) -> str | None:
        """The session id a cookie names, or None when it is missing or was not signed by us."""
        if not cookie or "." not in cookie:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            return _unb64(body).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return None

    def csrf_token(self, session: Session) -> str:
        return _b64(hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).digest())

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))


def origin_of(url: str) -> str | None:
    """ "https://photos.example.org" from any URL, lower case, default ports dropped; None if not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def same_origin(expected: str, origin: str | None, referer: str | None) -> bool:
    """Whether a POST came from our own page: `Origin` when the browser sent one, else `Referer`.

    Browsers send `Origin` on every cross-site POST (and on same-site ones); a request with
    neither is refused too, since a form on our own page always sends one of them.
    """
    want = origin_of(expected)
    if origin and origin != "null":
        return origin_of(origin) == want
    if referer:
        return origin_of(referer) == want
    return False


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: `X-Forwarded-For` is believed only when the peer is a trusted proxy.

    The header is read from the right (what the nearest proxy appended) past every trusted
    proxy; the first address that is not one is the client. Anything unparsable stops the walk,
    and the last trusted hop is taken, so a forged header cannot pick an address of its choice.
    """
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            parsed = ipaddress.ip_address(hop)
        except ValueError:
            return address
        address = str(parsed)
        if not _trusted(address, trusted):
            return address
    return address


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def peer_trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Whether the connection comes straight from a configured proxy (whose user header we believe)."""
    return peer is not None and _trusted(peer, trusted)
