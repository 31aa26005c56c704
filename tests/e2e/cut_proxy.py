"""A TCP proxy on loopback that a test can cut: the way to drop a client's connection to the
API on purpose (for example an SSE stream) and to keep it from coming back until the test says.

`cut()` closes every open connection (both sides) and, until `restore()`, closes each new one as
soon as it is accepted. Everything clients sent is kept per connection, so a test can check what
a reconnect carried (headers such as Last-Event-ID)."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

_CHUNK = 65536


class CuttableProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._up = True
        self._closed = False
        self.sent_by_clients: list[bytearray] = []  # what each accepted connection sent, in order
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="cut-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> CuttableProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Drops every open connection; new ones are closed at once until `restore()`."""
        with self._lock:
            self._up = False
            sockets, self._open = self._open, []
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def __enter__(self) -> CuttableProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
                if not up:
                    self.refused += 1
            if not up:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            except OSError:
                _close(client)
                continue
            record = bytearray()
            with self._lock:
                self._open += [client, upstream]
                self.sent_by_clients.append(record)
            threading.Thread(target=self._pump, args=(client, upstream, record), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bytearray | None) -> None:
        with suppress(OSError):
            while data := source.recv(_CHUNK):
                if record is not None:
                    with self._lock:
                        record.extend(data)
                target.sendall(data)
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()
