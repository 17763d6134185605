"""Staff on the web: sign-in, the tip queue, tip detail and casework, the dashboard."""
