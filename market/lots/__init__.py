"""Lots: terms, the lifecycle state machine and the bank's lot editor."""
