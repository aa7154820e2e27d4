"""Sandbox mode (Settings.mode "sandbox"; docs/operations.md §Sandbox mode): a rehearsal
exchange whose operator moves the clock forward, so a lot goes from publication to payout
in minutes while every timer reacts as it would in real time.

* `services.py` — the offset (PostgreSQL is the truth, `exchange_clock`), the command that
  moves it, and how every process learns a move (a Redis hint, a periodic read);
* `jobs.py` — the worker's `clock_moved` job: the sweeps every timer relies on, run at
  once after a move;
* `routes.py` — the operator's page and the API. In production none of them is registered.
"""
