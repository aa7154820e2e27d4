"""What a bidder organisation has going on: one page and its API (market/buyer/views.py)."""
