"""Disposal by agreement (docs/rules.md §Acquisition and pledge-to-equity): the bank takes a
case's assets at an agreed price (协议折价), or converts its claim into equity of the
borrower (质权转股权)."""
