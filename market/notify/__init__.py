"""Notifications (docs/rules.md §Notifications): the outbox relay, delivery and the channels
(inbox, e-mail, webhooks)."""
