"""The public catalogue: search of published lots and the lot page."""
