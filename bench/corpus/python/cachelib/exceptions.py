class ConnectionError(Exception):
    """Could not reach the cache server."""
