"""A TCP relay that can go silent on the connections it holds, while new ones still work."""

from __future__ import annotations

import socket
import threading
import time

__all__ = ["FreezingProxy"]

_HOLD_SECONDS = 0.05


class FreezingProxy:
    """Relays 127.0.0.1:<port> to a target port. `freeze()` stops relaying on the connections
    open at that moment (they stay open and silent, as behind a stuck middlebox); connections
    opened afterwards relay as before."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._generation = 0
        self._frozen_below = 0
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """Silence every connection open now."""
        self._generation += 1
        self._frozen_below = self._generation

    def close(self) -> None:
        self._closed.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self._target_port))
            except OSError:
                continue
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                relay = threading.Thread(target=self._relay, args=(source, sink, self._generation))
                relay.daemon = True
                relay.start()

    def _relay(self, source: socket.socket, sink: socket.socket, generation: int) -> None:
        while not self._closed.is_set():
            try:
                data = source.recv(65536)
            except OSError:
                return
            while generation < self._frozen_below and not self._closed.is_set():
                time.sleep(_HOLD_SECONDS)
            if not data or self._closed.is_set():
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            sock.close()
