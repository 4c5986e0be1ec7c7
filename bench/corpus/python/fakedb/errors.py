class DatabaseError(Exception):
    """Base of the driver's errors."""


class OperationalError(DatabaseError):
    """The server aborted the statement."""
