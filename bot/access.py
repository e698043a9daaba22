"""Who may use the bot at all: admins, and allow/block lists of chats or workspaces.

These are static settings checked before any quota is charged; per-user blocks live in the quota
store because operators change them at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.photo_requests import PhotoRequest


@dataclass(frozen=True)
class AccessPolicy:
    """`allowed` empty means open to everyone; entries are "platform:id" (a chat, channel or workspace)."""

    admins: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()

    def places(self, request: PhotoRequest) -> frozenset[str]:
        """Every identity the request's conversation can be listed under: the chat, and its workspace."""
        names = {request.chat_key}
        if request.workspace_id:
            names.add(f"{request.platform}:{request.workspace_id}")
        return frozenset(names)

    def is_admin(self, user_key: str) -> bool:
        return user_key in self.admins

    def permits(self, request: PhotoRequest) -> bool:
        """True when the conversation is not blocked and, if an allowlist is set, is on it."""
        places = self.places(request)
        if places & self.blocked:
            return False
        return not self.allowed or bool(places & self.allowed) or self.is_admin(request.user_key)
