"""Taking a tip in: SMS and web intake, the one-statement first text, follow-ups, attachments
and their cleaning, receipts, keywords and automatic replies, staff texts handed to alerting.
"""
