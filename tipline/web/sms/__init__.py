"""The SMS webhook (with its WSGI fast path) and the SMS status callback."""
