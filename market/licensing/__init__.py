"""Licensing as a way out of a defaulted pledge: offers, their value, contracts and royalties."""
