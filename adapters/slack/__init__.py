"""Slack: share a photo, mention the app, use /photodetective or the "Analyze photo" shortcut.

Registered as the `slack` entry point of `photodetective.adapters` (`adapters.slack:create`); see
`adapters.slack.adapter` for the transport, `adapters.slack.intake` for acknowledgement and
de-duplication, and `adapters/slack/manifest.yml` for the app's scopes.
"""

from adapters.slack.adapter import SlackAdapter, create

__all__ = ["SlackAdapter", "create"]
