"""Disposal by agreement (docs/rules.md §Acquisition and pledge-to-equity): the bank or an
acquirer takes a case's assets at an agreed price (协议折价 / 收储), or the bank converts
its claim into equity of the borrower (质权转股权)."""
