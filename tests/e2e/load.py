#!/usr/bin/env python3
"""Bounded load against a running mirror: hold many hostile or slow connections for a fixed
time while probing `/v2/` latency and sampling the mirror's RSS. Stops by itself.

Modes (one per run):
  idle       N connections that send nothing (re-opened, at most once a second each, when
             the mirror closes them: a client re-opening idle sockets)
  slowloris  N connections sending a request head one byte a second (re-opened likewise)
  slowread   N clients each reading PATH (a cached blob) at RATE bytes/s

    tests/e2e/load.py --addr 127.0.0.1:5000 --pid PID --mode idle --conns 500 --seconds 20
    tests/e2e/load.py --addr ... --pid PID --mode slowread --conns 64 --rate 10240 \
        --path /v2/library/big/blobs/sha256:...

Prints one line of `key=value` pairs: RSS before and at most (KiB), probe latencies
(median, max, ms), probes failed, connections open at the end and closed by the mirror.
Exits non-zero if a probe failed. Only
addresses given by --addr are contacted (use 127.0.0.1 or a test netns).
"""

import argparse
import socket
import statistics
import sys
import time

MAX_SECONDS = 120  # hard bound on any run
MAX_CONNS = 2000  # hard bound on connections held


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def probe(host, port, timeout=5.0):
    """Milliseconds for a whole `GET /v2/` on a fresh connection, or None on failure."""
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            return None
        return (time.monotonic() - t) * 1000
    except OSError:
        return None


class Client:
    """One held connection; `due` is when it next acts (send, read, or reconnect)."""

    def __init__(self):
        self.sock = None
        self.due = 0.0
        self.sent_head = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--mode", choices=["idle", "slowloris", "slowread"], required=True)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=int, default=10 * 1024, help="slowread bytes/s per client")
    ap.add_argument("--path", default="/v2/", help="slowread target")
    ap.add_argument("--probe-every", type=float, default=0.5)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    port = int(port)
    conns = min(a.conns, MAX_CONNS)
    seconds = min(a.seconds, MAX_SECONDS)

    clients = [Client() for _ in range(conns)]
    rss_before = rss_kib(a.pid)
    rss_max = rss_before
    latencies, failed = [], 0
    read_bytes = 0
    tick = 0.1 if a.mode == "slowread" else 1.0
    chunk = max(1, int(a.rate * tick))

    def open_(c, now):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if a.mode == "slowread":
                # A small receive window, so the kernel buffers little and the rate holds.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            s.settimeout(2)
            s.connect((host, port))
            s.setblocking(False)
        except OSError:
            c.sock, c.due = None, now + 1.0
            return
        c.sock, c.sent_head, c.due = s, False, now + tick
        if a.mode == "slowread":
            s.send(f"GET {a.path} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
        elif a.mode == "slowloris":
            s.send(b"G")

    reopened = 0  # connections the mirror closed (each re-opened a second later)
    start = time.monotonic()
    for c in clients:
        open_(c, time.monotonic())
    end = start + seconds
    next_probe = time.monotonic() + 1.0
    while time.monotonic() < end:
        now = time.monotonic()
        for c in clients:
            if now < c.due:
                continue
            if c.sock is None:
                open_(c, now)
                continue
            c.due = now + tick
            try:
                if a.mode == "slowloris":
                    c.sock.send(b"X")
                    # A closed connection shows as EOF on read.
                    if c.sock.recv(1 << 16, socket.MSG_PEEK) == b"":
                        raise OSError("closed")
                elif a.mode == "idle":
                    if c.sock.recv(1 << 16) == b"":
                        raise OSError("closed")
                else:
                    data = c.sock.recv(chunk)
                    if data == b"":
                        raise OSError("closed")
                    read_bytes += len(data)
            except BlockingIOError:
                pass
            except OSError:
                c.sock.close()
                reopened += 1
                # Re-open at most once a second.
                c.due = now + 1.0
                c.sock = None
        if now >= next_probe:
            ms = probe(host, port)
            if ms is None:
                failed += 1
            else:
                latencies.append(ms)
            rss_max = max(rss_max, rss_kib(a.pid))
            next_probe = now + a.probe_every
        time.sleep(0.01)
    rss_end = rss_kib(a.pid)
    rss_max = max(rss_max, rss_end)
    still_open = sum(1 for c in clients if c.sock is not None)
    for c in clients:
        if c.sock is not None:
            c.sock.close()
    lat = sorted(latencies)
    print(
        f"mode={a.mode} conns={conns} seconds={seconds:g} rss_before_kib={rss_before} "
        f"rss_max_kib={rss_max} rss_end_kib={rss_end} probes={len(lat)} probes_failed={failed} "
        f"v2_median_ms={statistics.median(lat) if lat else -1:.1f} "
        f"v2_max_ms={lat[-1] if lat else -1:.1f} open_at_end={still_open} closed_by_mirror={reopened}"
        + (f" read_bytes={read_bytes}" if a.mode == "slowread" else "")
    )
    return 0 if failed == 0 and lat else 1


if __name__ == "__main__":
    sys.exit(main())
