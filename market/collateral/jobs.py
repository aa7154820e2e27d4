"""arq jobs of this area, registered by workers/settings.py."""

from __future__ import annotations

from typing import Any

JOBS: list[Any] = []  # arq job functions
CRON: list[Any] = []  # arq cron jobs
