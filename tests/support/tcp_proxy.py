"""A TCP proxy on loopback that can stop forwarding, as a failover or a proxy that stops
answering leaves a connection half-open: the client's bytes are taken (the proxy's kernel
acknowledges them) and go nowhere, and nothing comes back. `heal` ends the connections it held
(a failover breaks them) and forwards again.

    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.black_hole()
    proxy.heal()
    proxy.close()
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def black_hole(self) -> None:
        """Stop forwarding, both ways; connections stay open."""
        self._forwarding.clear()

    def heal(self) -> None:
        """End the connections held so far, then forward again (new connections)."""
        self._end_connections()
        self._forwarding.set()

    def close(self) -> None:
        self._listener.close()
        self.heal()

    def _end_connections(self) -> None:
        with self._lock:
            held, self._sockets = self._sockets, []
        for sock in held:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                self._forwarding.wait()
                data = source.recv(65536)
                if not data:
                    break
                self._forwarding.wait()  # what was read as the hole opened is held too
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
