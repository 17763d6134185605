"""What every room runs on: per-app services (vault, Redis, queues, rules), the hand-off to the
queue by `JobKind`, the database lease, rate limits, and the sweeper's pass.
"""
