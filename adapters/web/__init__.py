"""The web page: upload photos in a browser, see the annotated result with boxes and an EXIF table.

Registered as the `web` entry point of `photodetective.adapters` (`adapters.web:create`) and of
`photodetective.commands` (`photodetective web user ...`); see `adapters.web.app` for the pages
and their security, `adapters.web.store` for where results live.
"""

from adapters.web.adapter import WebAdapter, create

__all__ = ["WebAdapter", "create"]
