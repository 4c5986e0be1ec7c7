"""A TCP relay on 127.0.0.1 that a test can cut as a dead network does: while cut, nothing
passes either way and no connection fails (bytes are held, connects are accepted and left
unanswered), so a client learns of it only through its own timeouts."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class NetCut:
    """Relays 127.0.0.1:`port` to `target` (host and port, or a unix socket's path); `cut()`
    freezes every byte, `heal()` resumes."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = [self._listener]
        self._spawn(self._accept)

    def cut(self) -> None:
        """From now on nothing passes (connections stay open, new ones hang)."""
        self._open.clear()

    def heal(self) -> None:
        """Bytes flow again, held ones first."""
        self._open.set()

    def close(self) -> None:
        """Stop relaying and close every socket."""
        self._stop.set()
        self._open.set()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._socks.append(client)
            self._spawn(self._relay, client)

    def _relay(self, client: socket.socket) -> None:
        self._open.wait()  # a connect during a cut is accepted and then left unanswered
        if self._stop.is_set():
            return
        try:
            if isinstance(self.target, str):
                server = socket.socket(socket.AF_UNIX)
                server.connect(self.target)
            else:
                server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        self._socks.append(server)
        peer = {client: server, server: client}
        with selectors.DefaultSelector() as sel:
            for sock in peer:
                sel.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    self._open.wait()  # held while cut: read, but not passed on, until healed
                    try:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        peer[key.fileobj].sendall(data)  # type: ignore[index]
                    except OSError:
                        return
