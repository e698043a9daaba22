"""The application: settings, wiring, quotas, the job pipeline and the entry points."""
