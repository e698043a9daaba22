"""Where the web page keeps its state: results and their images, accounts, sessions, sign-in links, limits.

A result must survive a restart and be visible to every replica (the upload may land on one, the
worker on another, the next page view on a third), so it lives next to the queue: SQLite files in
the data folder (`adapters.web.store_sqlite`), or Redis when the deployment shares one
(`adapters.web.store_redis`). Images are stored as blobs beside the result's row or key, so
deleting a result (the button, or the retention sweep) removes everything in one place.

Sessions live here for the same reason: a cookie only names a session, and the session's record
is what every replica checks on every request, so signing out (or the operator's new link, or
removing the account) ends it everywhere at once.

Both backends implement `WebStore`; `tests/integration/test_web_store.py` runs one set of tests
against both.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Status = Literal["queued", "analysing", "done", "failed"]
BlobKind = Literal["upload", "annotated", "prepared"]
BLOB_KINDS: tuple[BlobKind, ...] = ("upload", "annotated", "prepared")


@dataclass(frozen=True)
class WebResult:
    """One uploaded photo's page: who owns it, how far it got, and what the analysis said.

    `analysis` is the CLI's JSON document (`bot.analysis_json`), `view` what the page shows beyond
    it (the summary's faces, camera, location and recognizer notes), both JSON text; `error` is
    the friendly failure (code and message) when `status` is "failed".
    """

    id: str
    account: str
    created_at: float
    name: str
    status: Status = "queued"
    analysis: str | None = None
    view: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "created_at": self.created_at,
            "name": self.name,
            "status": self.status,
            "analysis": self.analysis,
            "view": self.view,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebResult:
        return cls(
            id=str(data["id"]),
            account=str(data["account"]),
            created_at=float(data["created_at"]),
            name=str(data.get("name") or "photo"),
            status=data.get("status") or "queued",
            analysis=data.get("analysis"),
            view=data.get("view"),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
        )


@dataclass(frozen=True)
class SessionRecord:
    """A signed-in browser as the store knows it: whose, and until when (epoch s).

    `account_since` is when the account it signed in to was added (`account_created`): an account
    removed and added again under the same name has another, so a session of the old account
    cannot come back to life under the new one, even if it escaped the removal by a race.
    """

    account: str
    account_since: float
    expires_at: float


def new_result_id() -> str:
    """An unguessable id (128 bits): knowing one result's address tells nothing about another's."""
    return secrets.token_urlsafe(16)


def token_digest(token: str) -> str:
    """Sign-in links and session ids are stored hashed, so a copy of the store hands out no session."""
    return hashlib.sha256(token.encode()).hexdigest()


class WebStore(Protocol):
    async def add_result(self, result: WebResult) -> None: ...
    async def result(self, result_id: str) -> WebResult | None: ...
    async def results_of(self, account: str) -> list[WebResult]:
        """The account's results, newest first."""
        ...

    async def update(self, result: WebResult) -> None:
        """Store a result's new state; a result deleted meanwhile stays deleted."""
        ...

    async def delete_result(self, result_id: str) -> None: ...
    async def put_blob(self, result_id: str, kind: BlobKind, data: bytes) -> None: ...
    async def blob(self, result_id: str, kind: BlobKind) -> bytes | None: ...
    async def delete_blob(self, result_id: str, kind: BlobKind) -> None: ...
    async def sweep(self, older_than: float) -> int:
        """Delete every result created before `older_than` (epoch seconds); returns how many."""
        ...

    async def add_account(self, name: str, now: float) -> bool: ...
    async def remove_account(self, name: str) -> bool:
        """Forget the account, its sessions, its sign-in links and its results."""
        ...

    async def accounts(self) -> list[str]: ...
    async def has_account(self, name: str) -> bool: ...
    async def account_created(self, name: str) -> float | None:
        """When the account was (last) added, or None when there is no such account."""
        ...

    async def add_signin(self, token: str, account: str, expires_at: float) -> None: ...
    async def take_signin(self, token: str, now: float) -> str | None:
        """The account a one-time link signs in, consuming it; None when unknown, used or expired."""
        ...

    async def add_session(self, sid: str, record: SessionRecord) -> None: ...
    async def session(self, sid: str, now: float) -> SessionRecord | None:
        """The live session `sid` names; None when it was never made, has ended or has expired."""
        ...

    async def end_session(self, sid: str) -> None: ...
    async def end_sessions(self, account: str, keep: str | None = None) -> int:
        """End every session of `account` but `keep` (a session id); returns how many ended."""
        ...

    async def add_waiting(self, result_id: str, request: str, since: float) -> None:
        """Keep an accepted photo's request (JSON) until the quota's concurrency lets it in."""
        ...

    async def waiting(self, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` waiting photos, oldest first: (result id, request JSON)."""
        ...

    async def end_waiting(self, result_id: str) -> None: ...
    async def count(self, key: str, day: str) -> int: ...
    async def add_count(self, key: str, day: str, amount: int) -> int: ...
    async def acquire_slot(self, key: str, token: str, limit: int, now: float, lease_s: float) -> bool:
        """Take one of `limit` slots for `key` (slots expire after `lease_s`, so a crash frees them)."""
        ...

    async def release_slot(self, key: str, token: str) -> None: ...
    async def session_secret(self) -> bytes:
        """The key signing session cookies, made once and shared by every replica."""
        ...

    async def close(self) -> None: ...


def build_store(redis_url: str | None, data_dir: Path) -> WebStore:
    """Redis when the deployment shares one (every replica sees every result), else SQLite in data_dir.

    Either is reached with the deployment's one access policy (`bot.wiring`), like every store.
    """
    from adapters.web.store_redis import RedisWebStore
    from adapters.web.store_sqlite import SQLiteWebStore
    from bot.wiring import REDIS_POLICY, SQLITE_POLICY

    if redis_url:
        return RedisWebStore(redis_url, REDIS_POLICY)
    return SQLiteWebStore(data_dir, SQLITE_POLICY)
