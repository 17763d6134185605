"""Students on the web: the tip form, uploads, and the follow-up page."""
