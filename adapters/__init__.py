"""Chat-platform adapters: translate platform events to application requests and results to replies."""
