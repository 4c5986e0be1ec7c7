from cachelib.client import Cache


def load_session(port, sid):
    return Cache("127.0.0.1", port).get(f"session:{sid}")
