"""Platform-independent photo analysis: decoding, EXIF, recognizers, annotation and summaries.

Nothing in this package knows about chat platforms, queues or storage; see DEVELOPERS.md.
"""
