"""Outbound messages (email, SMS) with an outbox."""
