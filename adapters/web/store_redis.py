"""The web state in Redis, shared by every replica of a scaled-out deployment.

Results are JSON strings with sorted sets indexing them by time and by account; blobs are plain
keys next to the result. Sessions and sign-in links are keys with a time to live, so Redis
forgets them on its own once they expire; `account-sessions:<name>` lists an account's session
keys, so signing an account out everywhere needs no scan.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace

import redis.asyncio as aioredis

from adapters.web.store import BLOB_KINDS, BlobKind, SessionRecord, WebResult, token_digest
from bot.storage import DEFAULT_REDIS, RedisPolicy, async_redis

#: Seconds a command may take when it carries a photo (the policy's own timeout if longer).
BLOB_TIMEOUT_S = 5.0


def _text(raw: object) -> str:
    """A key or member as text (the client answers bytes; its types also allow str)."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _bytes(raw: object) -> bytes:
    return raw if isinstance(raw, bytes) else str(raw).encode()


_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisWebStore:
    """The web state in Redis, shared by every replica; blobs are plain keys next to the result."""

    def __init__(
        self, url: str, policy: RedisPolicy = DEFAULT_REDIS, prefix: str = "photodetective:web:"
    ) -> None:
        # The deployment's client policy (bot.wiring.REDIS_POLICY), with time enough for a photo:
        # a blob of up to 25 MB is one command, where the quota's commands are a few bytes.
        blob_policy = replace(policy, timeout_s=max(policy.timeout_s, BLOB_TIMEOUT_S))
        self.client: aioredis.Redis = async_redis(url, blob_policy, binary=True)
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def add_result(self, result: WebResult) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._k("result", result.id), json.dumps(result.to_json()))
            pipe.zadd(self._k("results"), {result.id: result.created_at})
            pipe.zadd(self._k("account-results", result.account), {result.id: result.created_at})
            await pipe.execute()

    async def result(self, result_id: str) -> WebResult | None:
        raw = await self.client.get(self._k("result", result_id))
        return None if raw is None else WebResult.from_json(json.loads(raw))

    async def results_of(self, account: str) -> list[WebResult]:
        ids = await self.client.zrevrange(self._k("account-results", account), 0, -1)
        if not ids:
            return []
        raws = await self.client.mget([self._k("result", _text(i)) for i in ids])
        return [WebResult.from_json(json.loads(raw)) for raw in raws if raw is not None]

    async def update(self, result: WebResult) -> None:
        await self.client.set(self._k("result", result.id), json.dumps(result.to_json()), xx=True)

    async def delete_result(self, result_id: str) -> None:
        found = await self.result(result_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._k("result", result_id), *(self._k("blob", result_id, k) for k in BLOB_KINDS))
            pipe.delete(self._k("waiting-request", result_id))
            pipe.zrem(self._k("waiting"), result_id)
            pipe.zrem(self._k("results"), result_id)
            if found is not None:
                pipe.zrem(self._k("account-results", found.account), result_id)
            await pipe.execute()

    async def put_blob(self, result_id: str, kind: BlobKind, data: bytes) -> None:
        await self.client.set(self._k("blob", result_id, kind), data)

    async def blob(self, result_id: str, kind: BlobKind) -> bytes | None:
        raw = await self.client.get(self._k("blob", result_id, kind))
        return None if raw is None else _bytes(raw)

    async def delete_blob(self, result_id: str, kind: BlobKind) -> None:
        await self.client.delete(self._k("blob", result_id, kind))

    async def sweep(self, older_than: float) -> int:
        ids = await self.client.zrangebyscore(self._k("results"), "-inf", f"({older_than}")
        for raw in ids:
            await self.delete_result(_text(raw))
        return len(ids)

    async def add_account(self, name: str, now: float) -> bool:
        return bool(await self.client.hsetnx(self._k("accounts"), name, str(now)))

    async def remove_account(self, name: str) -> bool:
        for result in await self.results_of(name):
            await self.delete_result(result.id)
        await self.client.delete(self._k("account-results", name))
        await self.end_sessions(name)
        return bool(await self.client.hdel(self._k("accounts"), name))

    async def accounts(self) -> list[str]:
        names = await self.client.hkeys(self._k("accounts"))
        return sorted(_text(n) for n in names)

    async def has_account(self, name: str) -> bool:
        return bool(await self.client.hexists(self._k("accounts"), name))

    async def account_created(self, name: str) -> float | None:
        raw = await self.client.hget(self._k("accounts"), name)
        return None if raw is None else float(raw)

    async def add_signin(self, token: str, account: str, expires_at: float) -> None:
        # The account's creation time goes with the link: removing the account and adding it
        # again must not bring an old, unused link back to life (SQLite deletes such links).
        ttl = max(int(expires_at - time.time()) + 1, 1)
        since = await self.account_created(account)
        value = json.dumps({"account": account, "expires_at": expires_at, "account_since": since})
        await self.client.set(self._k("signin", token_digest(token)), value, ex=ttl)

    async def take_signin(self, token: str, now: float) -> str | None:
        raw = await self.client.getdel(self._k("signin", token_digest(token)))
        if raw is None:
            return None
        data = json.loads(raw)
        account = str(data["account"])
        if float(data["expires_at"]) < now:
            return None
        since = await self.account_created(account)
        if since is None or data.get("account_since", since) != since:  # links made before 2026-12 had none
            return None
        return account

    async def add_session(self, sid: str, record: SessionRecord) -> None:
        digest = token_digest(sid)
        ttl = max(int(record.expires_at - time.time()) + 1, 1)
        value = json.dumps([record.account, record.account_since, record.expires_at])
        index = self._k("account-sessions", record.account)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._k("session", digest), value, ex=ttl)
            pipe.sadd(index, digest)
            # Every session lasts as long, so the newest one outlives the rest: the index with it.
            pipe.expire(index, ttl)
            await pipe.execute()

    async def session(self, sid: str, now: float) -> SessionRecord | None:
        raw = await self.client.get(self._k("session", token_digest(sid)))
        if raw is None:
            return None
        account, account_since, expires_at = json.loads(raw)
        if float(expires_at) < now:
            return None
        return SessionRecord(str(account), float(account_since), float(expires_at))

    async def end_session(self, sid: str) -> None:
        digest = token_digest(sid)
        raw = await self.client.getdel(self._k("session", digest))
        if raw is not None:
            await self.client.srem(self._k("account-sessions", str(json.loads(raw)[0])), digest)

    async def end_sessions(self, account: str, keep: str | None = None) -> int:
        index = self._k("account-sessions", account)
        kept = token_digest(keep) if keep is not None else None
        digests = [_text(d) for d in await self.client.smembers(index)]
        ending = [d for d in digests if d != kept]
        if not ending:
            return 0
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*(self._k("session", d) for d in ending))
            pipe.srem(index, *ending)
            ended, _ = await pipe.execute()
        return int(ended)

    async def add_waiting(self, result_id: str, request: str, since: float) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._k("waiting-request", result_id), request)
            pipe.zadd(self._k("waiting"), {result_id: since})
            await pipe.execute()

    async def waiting(self, limit: int) -> list[tuple[str, str]]:
        ids = [_text(i) for i in await self.client.zrange(self._k("waiting"), 0, limit - 1)]
        if not ids:
            return []
        requests = await self.client.mget([self._k("waiting-request", i) for i in ids])
        return [(i, _text(r)) for i, r in zip(ids, requests, strict=True) if r is not None]

    async def end_waiting(self, result_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._k("waiting-request", result_id))
            pipe.zrem(self._k("waiting"), result_id)
            await pipe.execute()

    async def count(self, key: str, day: str) -> int:
        raw = await self.client.get(self._k("count", key, day))
        return 0 if raw is None else int(raw)

    async def add_count(self, key: str, day: str, amount: int) -> int:
        name = self._k("count", key, day)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, 2 * 86_400)
            total, _ = await pipe.execute()
        return int(total)

    async def acquire_slot(self, key: str, token: str, limit: int, now: float, lease_s: float) -> bool:
        taken = await self.client.eval(
            _TAKE_SLOT, 1, self._k("slots", key), now, now + lease_s, limit, token, int(lease_s) + 1
        )
        return bool(taken)

    async def release_slot(self, key: str, token: str) -> None:
        await self.client.zrem(self._k("slots", key), token)

    async def session_secret(self) -> bytes:
        name = self._k("session-secret")
        await self.client.set(name, secrets.token_bytes(32), nx=True)
        raw = await self.client.get(name)
        assert raw is not None
        return _bytes(raw)

    async def close(self) -> None:
        await self.client.aclose()
