"""tipline: an anonymous tip line and alert backend for schools.

The package imports nothing: `tipline.app.create_app` builds the web app, `tipline.cli` the
command, and each room (see ARCHITECTURE.md) loads on its own.
"""
