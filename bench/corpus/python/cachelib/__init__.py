"""A cache-client look-alike: connects to a real (closed) local port, as redis-py would."""
