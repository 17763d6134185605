"""Sending and following what tipline sends: the outbox (a row before any send), send attempts
with retries, delivery status, and the one client for Twilio's REST API and SMTP (`notifier`).
"""
