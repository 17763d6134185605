"""Domain exceptions shared across tipline."""


class TiplineError(Exception):
    """Base for errors with a message fit to show a user in one line."""


class ConfigError(TiplineError):
    """The environment or the configuration file is invalid; the message names what and where."""


class UnknownSchool(TiplineError):
    """No school matches the slug or number given."""
