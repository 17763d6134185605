"""Twilio voice webhooks: what an alert call says, and keypress 1 to acknowledge."""
