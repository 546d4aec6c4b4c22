"""Prefect flows: thin orchestration over the functional core (the only package that imports prefect)."""

import os

# Offline-friendly defaults for Prefect's embedded (ephemeral) API; a user's own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
