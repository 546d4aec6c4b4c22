"""Prefect flows: thin orchestration over the functional core (the only package that imports prefect)."""

import os

# Offline-friendly defaults for Prefect's embedded (ephemeral) API; a user's own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
if not os.environ.get("PREFECT_API_URL"):
    # The embedded API's server logs at ERROR, with tracebacks, when it is stopped at the end of a run
    # while task-run events are still being written ("Error flushing N events", a cancelled database
    # call): bookkeeping of a run that already succeeded. A failing API call still fails the flow itself.
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
