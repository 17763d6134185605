"""Blueprint package."""
