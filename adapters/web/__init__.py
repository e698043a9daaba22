"""The web page: upload photos in a browser, see the annotated result with boxes and an EXIF table.

Registered as the `web` entry point of `photodetective.adapters` (`adapters.web:create`) and of
`photodetective.commands` (`photodetective web user ...`); see `adapters.web.app` for the routes
and how the handlers are split by job, `adapters.web.sessions` for sign-in and sessions that end,
`adapters.web.store` for where results, sessions and waiting photos live.
"""

from adapters.web.adapter import WebAdapter, create

__all__ = ["WebAdapter", "create"]
