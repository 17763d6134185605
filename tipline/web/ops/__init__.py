"""Monitoring endpoints for load balancers and uptime checks."""
