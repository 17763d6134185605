"""Alerting: routing a tip to people, incidents, escalation steps and timers, acknowledgements,
fallback to a call, and the wording of alerts. Below it: outbox, district, platform, vault, models.
"""
