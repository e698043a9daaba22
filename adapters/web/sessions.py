"""Who is asking, and sessions that end: sign-in links, cookies, CSRF and origin checks, sign-out.

A session starts when a one-time sign-in link is followed (or, in open mode, on a first visit)
and is a record in the result store; the cookie only names it. Every request reads the record,
so a session ends for every copy of its cookie, on every replica, the moment it is ended:

- "Sign out" ends this browser's session;
- "Sign out everywhere else" ends the account's other sessions (a phone left behind);
- `photodetective web user add NAME` for an existing account ends all of them (unless told to
  keep them), so the link for a new phone signs the lost one out;
- `web user remove NAME` ends them with the account; adding the name again starts afresh.

In proxy mode there are no sessions here: the reverse proxy vouches for every request.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from adapters.web.config import WebSettings
from adapters.web.errors import WebError, form_field, redirect
from adapters.web.security import SESSION_COOKIE, Session, Signer, peer_trusted, same_origin
from adapters.web.store import SessionRecord, WebStore
from adapters.web.upload_body import BodyClock, read_form
from core.untrusted_text import clean_text

GUEST_PREFIX = "guest-"


@dataclass(frozen=True)
class Visitor:
    """Who is asking: the session (account and CSRF basis) and a cookie to set, if a new one was made."""

    session: Session
    new_cookie: str | None = None

    @property
    def account(self) -> str:
        return self.session.account


class Sessions:
    """Finds the visitor of a request and starts and ends sessions; also the sign-in/out handlers."""

    def __init__(self, web_settings: WebSettings, store: WebStore, clock: Callable[[], float]) -> None:
        self.web = web_settings
        self.store = store
        self.clock = clock
        self._signer: Signer | None = None

    async def signer(self) -> Signer:
        """The cookie signer, keyed by the configured secret or the one the store keeps for all replicas."""
        if self._signer is None:
            secret = (
                self.web.session_secret.get_secret_value().encode()
                if self.web.session_secret is not None
                else await self.store.session_secret()
            )
            self._signer = Signer(secret)
        return self._signer

    # -- who is asking ---------------------------------------------------------------------

    async def visitor(self, request: web.Request, *, create: bool = False) -> Visitor | None:
        """The signed-in visitor, per the access mode; `create` makes an anonymous one in open mode."""
        if self.web.access == "proxy":
            return self._proxied(request)
        now = self.clock()
        sid = (await self.signer()).sid(request.cookies.get(SESSION_COOKIE))
        if sid is not None:
            record = await self.store.session(sid, now)
            if record is not None and await self._still_valid(record):
                return Visitor(Session(record.account, record.expires_at, sid))
        if self.web.access == "open" and create:
            cookie, session = await self.start(f"{GUEST_PREFIX}{secrets.token_hex(6)}", account_since=0.0)
            return Visitor(session, cookie)
        return None

    def _proxied(self, request: web.Request) -> Visitor | None:
        name = request.headers.get(self.web.proxy_user_header)
        if not name or not peer_trusted(request.remote, self.web.trusted_proxies):
            return None
        account = clean_text(name, 100)
        if not account:
            return None
        # No cookie: the proxy vouches for every request; the CSRF basis is the account itself.
        return Visitor(Session(f"proxy:{account}", math.inf, f"proxy:{account}"))

    async def _still_valid(self, record: SessionRecord) -> bool:
        """A guest's session in open mode, or one of the account as it is now (not a removed namesake)."""
        if record.account.startswith(GUEST_PREFIX):
            return self.web.access == "open"
        return await self.store.account_created(record.account) == record.account_since

    async def required(self, request: web.Request) -> Visitor:
        visitor = await self.visitor(request)
        if visitor is None:
            raise WebError(401, "signin_required", self.signin_text())
        return visitor

    def signin_text(self) -> str:
        if self.web.access == "proxy":
            return "Your sign-in did not reach this page; sign in through the site's front door."
        return (
            "Please sign in first, with the sign-in link the operator gave you "
            "(`photodetective web user add NAME` prints one)."
        )

    # -- checks on every POST ---------------------------------------------------------------

    async def check_post(self, request: web.Request, visitor: Visitor, token: str | None) -> None:
        """Our own origin and a valid CSRF token, or a 403."""
        self.check_origin(request)
        if not (await self.signer()).csrf_ok(visitor.session, token):
            raise WebError(403, "csrf", "This form has expired; reload the page and try again.")

    def check_origin(self, request: web.Request) -> None:
        expected = self.web.public_url or f"{request.scheme}://{request.host}"
        if not same_origin(expected, request.headers.get("Origin"), request.headers.get("Referer")):
            raise WebError(403, "bad_origin", "This request did not come from this site's own page.")

    async def csrf_token(self, visitor: Visitor) -> str:
        return (await self.signer()).csrf_token(visitor.session)

    # -- starting and ending ----------------------------------------------------------------

    async def start(self, account: str, *, account_since: float) -> tuple[str, Session]:
        """A new session for `account`: its record in the store and the cookie naming it."""
        now = self.clock()
        expires_at = now + self.web.session_days * 86400
        cookie, sid = (await self.signer()).cookie()
        await self.store.add_session(sid, SessionRecord(account, account_since, expires_at))
        return cookie, Session(account, expires_at, sid)

    def set_cookie(self, response: web.StreamResponse, cookie: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(self.web.session_days * 86400),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.web.secure_cookies,
        )

    async def signin(self, request: web.Request) -> web.StreamResponse:
        """GET /signin/{token}: the one-time link becomes a session of its own."""
        if self.web.access != "accounts":
            return redirect("/")
        account = await self.store.take_signin(request.match_info["token"], self.clock())
        since = None if account is None else await self.store.account_created(account)
        if account is None or since is None:
            raise WebError(
                400,
                "signin_link",
                "This sign-in link was already used or has expired. Ask the operator for a new one.",
            )
        cookie, _ = await self.start(account, account_since=since)
        response = redirect("/")
        self.set_cookie(response, cookie)
        return response

    async def signout(self, request: web.Request) -> web.StreamResponse:
        """POST /signout: this browser's session ends (every copy of its cookie with it)."""
        visitor = await self._posted(request)
        await self.store.end_session(visitor.session.sid)
        response = redirect("/signedout")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    def signed_out_words(self) -> str:
        """What the page after "Sign out" says: how to come back, per the access mode."""
        if self.web.access == "open":
            return "You are signed out, and this browser's results are no longer shown here."
        return "You are signed out. To sign in again, ask the operator for a new sign-in link."

    async def signout_others(self, request: web.Request) -> web.StreamResponse:
        """POST /signout/others: every other session of this account ends; this one stays."""
        visitor = await self._posted(request)
        await self.store.end_sessions(visitor.account, keep=visitor.session.sid)
        return redirect("/")

    async def _posted(self, request: web.Request) -> Visitor:
        if self.web.access == "proxy":
            raise WebError(404, "not_found", "Sign out through the site's front door.")
        visitor = await self.required(request)
        form = await read_form(
            request, BodyClock(request, self.web.upload_stall_s, self.web.upload_timeout_s)
        )
        await self.check_post(request, visitor, form_field(form.get("csrf_token")))
        return visitor
