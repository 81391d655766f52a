"""The root of the project's exceptions.

Every error that untrusted input can provoke is a subclass of `WekaError`, so an adapter can
catch exactly what the protocol raises and nothing else.
"""


class WekaError(Exception):
    """Base class of every error WekaCoin raises on purpose."""
