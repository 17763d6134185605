"""Keeping secrets: envelope encryption and sealed columns (`keyring`, `crypto`), password hashes,
the hash-chained audit log, and retention (crypto-shredding).
"""
