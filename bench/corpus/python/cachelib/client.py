import socket

from cachelib.exceptions import ConnectionError


class Cache:
    def __init__(self, host, port):
        self.host, self.port = host, port

    def _connect(self):
        try:
            return socket.create_connection((self.host, self.port), timeout=1)
        except OSError as e:
            raise ConnectionError(
                f"Error {e.errno} connecting to {self.host}:{self.port}. Connection refused."
            ) from None

    def get(self, key):
        sock = self._connect()
        sock.sendall(f"GET {key}\r\n".encode())
        return sock.recv(1024)
