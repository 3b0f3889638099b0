"""ser/balance.py: `ser.prefork`'s workers keep their keep-alive connections even.

The share rule on a table shared across fork; the protocol closing a connection over its share
(in-process, on uvicorn's protocol with a fake transport); and the prefork server moving a burst of
connections until each worker holds its share (`psutil` counts each worker's sockets).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import time
from urllib.parse import urlsplit

import psutil
import pytest
from helpers import serve

from ser.balance import BalancedHttpToolsProtocol, ConnectionTable


def test_share_rule():
    """Over ⌈all / workers⌉ plus a quarter of it: exact for few connections, some slack for many."""
    table = ConnectionTable(2)
    table.publish(1, 0)
    assert table.over_share(0, 3) and table.over_share(0, 2)  # The other worker idles.
    assert not table.over_share(0, 1)  # A single client is never asked to reconnect.
    table.publish(1, 4)
    assert not table.over_share(0, 4) and not table.over_share(0, 5)  # 5 : 4 → even 5.
    assert table.over_share(0, 8)  # 8 : 4 → even 6, + 1.
    table.publish(1, 12)
    assert not table.over_share(0, 20)  # 20 : 12 → even 16, + 4.
    table.publish(1, 11)
    assert table.over_share(0, 21)
    with pytest.raises(ValueError, match="workers=0; at least 1"):
        ConnectionTable(0)


def test_table_is_shared_with_forked_workers():
    table = ConnectionTable(3)
    pid = os.fork()
    if pid == 0:  # The child publishes; the parent must see it.
        table.publish(2, 7)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.counts() == [0, 0, 7]


class _Transport:
    """The part of an asyncio transport uvicorn's protocol uses, recording what it writes."""

    def __init__(self):
        self.written, self.closed = b"", False

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 3000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def set_protocol(self, protocol):
        pass


async def _answer(others: int, connections: int) -> list[_Transport]:
    """``connections`` open on this worker (slot 0 of 2), the other holding ``others``; one GET
    on each. The transports, after the answers."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = Config(app=app, http=BalancedHttpToolsProtocol, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    table = ConnectionTable(2)
    table.publish(1, others)
    BalancedHttpToolsProtocol.table, BalancedHttpToolsProtocol.slot = table, 0
    BalancedHttpToolsProtocol.leaving = 0  # Per worker process; fake transports never close.
    try:
        protocols = [
            BalancedHttpToolsProtocol(config=config, server_state=state, app_state={})
            for _ in range(connections)
        ]
        transports = [_Transport() for _ in protocols]
        for protocol, transport in zip(protocols, transports, strict=True):
            protocol.connection_made(transport)
        assert table.counts() == [connections, others]
        for protocol in protocols:
            protocol.data_received(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(20):
            await asyncio.sleep(0)
        return transports
    finally:
        BalancedHttpToolsProtocol.table, BalancedHttpToolsProtocol.leaving = None, 0


def test_a_worker_over_its_share_closes_after_answering():
    """3 : 0 — the first two requests close their connections; each counts as gone at once, so
    the third (1 : 0 by then) keeps its own."""
    transports = asyncio.run(_answer(others=0, connections=3))
    for t in transports:
        assert t.written.startswith(b"HTTP/1.1 200 OK") and t.written.endswith(b"ok")
    closed = [b"connection: close" in t.written.lower() and t.closed for t in transports]
    assert closed == [True, True, False]


def test_a_worker_within_its_share_keeps_its_connections():
    transports = asyncio.run(_answer(others=3, connections=3))
    for t in transports:
        assert t.written.startswith(b"HTTP/1.1 200 OK") and not t.closed
        assert b"connection: close" not in t.written.lower()


def _connections_per_worker(proc: psutil.Process, port: int) -> list[int]:
    workers = proc.children()
    return sorted(
        sum(1 for c in w.net_connections("tcp") if c.laddr.port == port and c.status == "ESTABLISHED")
        for w in workers
    )


def _get(conn: http.client.HTTPConnection) -> bool:
    """One keep-alive GET; whether the server asked to close the connection."""
    conn.request("GET", "/livez")
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    return (r.getheader("connection") or "").lower() == "close"


@pytest.mark.slow
@pytest.mark.parametrize("balance", ["on", "off"])
def test_prefork_moves_a_burst_of_connections_towards_an_even_split(trained_store, tmp_path, balance):
    with serve(trained_store, tmp_path, server="prefork", SER_WORKERS="2", SER_DEMO="0",
               SER_CONNECTION_BALANCE=balance) as srv:  # fmt: skip
        host, port = urlsplit(srv.url).hostname, urlsplit(srv.url).port
        master = psutil.Process(srv.proc.pid)
        conns = [http.client.HTTPConnection(host, port, timeout=30) for _ in range(8)]
        for c in conns:  # A burst: all connected before any request.
            c.connect()
        closes = 0
        for _ in range(40):
            asked = [_get(c) for c in conns]
            closes += sum(asked)
            for c, close in zip(conns, asked, strict=True):
                if close:
                    c.close()
                    c.connect()
            time.sleep(0.05)  # The workers' counts settle (a closed socket leaves its worker).
            split = _connections_per_worker(master, port)
            if balance == "off" or split[-1] <= 5:
                break
        if balance == "on":
            assert split in ([4, 4], [3, 5]), (split, srv.log_tail())  # 8 : 0 … 6 : 2 move.
            assert not any(_get(c) for c in conns for _ in range(5))  # Even: nothing more closes.
        else:
            assert closes == 0  # Off: never asked to reconnect, whatever the split.
        for c in conns:
            c.close()
