"""Notifications (issue 5): outbox relay, delivery and the channels (inbox, email, webhooks)."""
