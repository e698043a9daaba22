"""What the two vision-model fakes share: the scripted reply, misbehaviour and latency.

`tests.fakes.bedrock` (Amazon Bedrock's Converse) and `tests.fakes.openai_api` (an OpenAI-compatible
chat completions server) differ in their wire format only; both answer with `reply` (a caption
and tags as the JSON the prompt asks for, by default), after a latency (fixed, or uniformly
random in a range, as a real model's) and with at most `parallel` answers being worked on at once
(a model server's batch: the others queue, so throughput is bounded by parallel / latency), and
can be scripted per call to answer an HTTP error
(429 with a retry header, 5xx), to hang until the client gives up, or to send a body that is
not JSON at all. Every request is recorded with its headers and the photo it carried.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import dataclass, field
from typing import Literal

from tests.fakes.background import BackgroundServer

DEFAULT_REPLY = json.dumps(
    {"caption": "Two people stand in front of a Ferris wheel at dusk.", "tags": ["Ferris wheel", "dusk"]}
)

MisbehaviourKind = Literal["status", "hang", "malformed", "redirect"]


@dataclass
class Misbehaviour:
    """One scripted failure: for the next `times` calls (None: every call)."""

    kind: MisbehaviourKind
    status: int = 500
    retry_after: float | None = None
    error_type: str = ""  # Bedrock's error code, e.g. ThrottlingException
    location: str = ""  # where a redirect points
    times: int | None = 1
    hits: int = 0


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, object]
    image: bytes | None


@dataclass
class _Script:
    reply: str = DEFAULT_REPLY
    latency: tuple[float, float] = (0.0, 0.0)
    parallel: int | None = None
    misbehaviours: list[Misbehaviour] = field(default_factory=list)


class ScriptedModelServer(BackgroundServer):
    """The scripting and recording half of a model fake; subclasses speak the wire format."""

    def __init__(self, host: str = "127.0.0.1", *, seed: int = 0) -> None:
        super().__init__(host)
        self._lock = threading.Lock()
        self._script = _Script()
        self._seen: list[Seen] = []
        self._random = random.Random(seed)
        self._hangs: set[asyncio.Future[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self.busiest = 0  # the most answers worked on at once
        self._busy = 0

    def answer(self, reply: str) -> None:
        """The model's text for every later call."""
        with self._lock:
            self._script.reply = reply

    def set_latency(self, low: float, high: float | None = None) -> None:
        """Answer after `low` seconds, or a uniformly random time between `low` and `high`."""
        with self._lock:
            self._script.latency = (low, low if high is None else high)

    def set_parallel(self, parallel: int | None) -> None:
        """Work on at most `parallel` answers at once (None: no limit); set before `start`."""
        with self._lock:
            self._script.parallel = parallel

    def misbehave(self, kind: MisbehaviourKind, **options: object) -> Misbehaviour:
        """Script a failure for the next call(s); see `Misbehaviour`."""
        scripted = Misbehaviour(kind, **options)  # type: ignore[arg-type]
        with self._lock:
            self._script.misbehaviours.append(scripted)
        return scripted

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def _record(self, seen: Seen) -> Misbehaviour | None:
        with self._lock:
            self._seen.append(seen)
            for scripted in self._script.misbehaviours:
                if scripted.times is None or scripted.hits < scripted.times:
                    scripted.hits += 1
                    return scripted
        return None

    async def _on_start(self) -> None:
        parallel = self._script.parallel
        self._slots = asyncio.Semaphore(parallel) if parallel else None

    async def _delay(self) -> None:
        """The model's working time, in one of the `parallel` slots when they are limited."""
        with self._lock:
            low, high = self._script.latency
            wait = self._random.uniform(low, high) if high > low else low
        if self._slots is None:
            await asyncio.sleep(wait)
            return
        async with self._slots:
            self._busy += 1
            self.busiest = max(self.busiest, self._busy)
            try:
                await asyncio.sleep(wait)
            finally:
                self._busy -= 1

    def _reply(self) -> str:
        with self._lock:
            return self._script.reply

    async def _hang(self) -> None:
        """Never answer (until the fake stops): the client's timeout is what ends the call."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hangs.add(waiter)
        try:
            await asyncio.wait_for(waiter, 120)
        finally:
            self._hangs.discard(waiter)

    async def _on_stop(self) -> None:
        for waiter in list(self._hangs):
            if not waiter.done():
                waiter.set_result(None)
