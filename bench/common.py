"""What the benchmarks share."""

from __future__ import annotations

import os


def bench_seconds(default: int) -> int:
    """BENCH_SECONDS, the seconds a scenario runs: a whole number, at least 1."""
    raw = os.environ.get("BENCH_SECONDS", str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"BENCH_SECONDS: a whole number of seconds, at least 1; got {raw!r}")
    return int(raw)


def known_names(name: str, given: list[str], known: tuple[str, ...]) -> list[str]:
    """`given` (a comma-separated setting's values) when all of them are `known`."""
    if unknown := set(given) - set(known):
        raise SystemExit(f"{name}: unknown {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    return given
