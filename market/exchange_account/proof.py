"""The statement line a transfer was seen on: what a deposit's confirmation or a sale's
payment names as its proof when it comes from the exchange's statement
(market/exchange_account/statement.py) rather than from the operator's word alone."""

from __future__ import annotations

from typing import Any

import msgspec


class StatementProof(msgspec.Struct, frozen=True, kw_only=True):
    line_id: int
    statement_id: int
    line_no: int
    bank_txn_id: str | None
    by_hand: bool  # a person matched the line; False: the import matched it (the exchange's act)

    def audited(self) -> dict[str, Any]:
        """What the audit row says about the line."""
        return {
            "statement_line_id": self.line_id,
            "statement_id": self.statement_id,
            "line_no": self.line_no,
            "bank_txn_id": self.bank_txn_id,
            "matched": "manual" if self.by_hand else "statement",
        }
