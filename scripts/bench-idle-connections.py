#!/usr/bin/env python3
"""Idle and half-open connections against a switchyard binary: opens N connections that send
nothing, half an HTTP/2 preface, or half an HTTP/1.1 head (a third each), then checks while they
are open that /healthz and a chat request still answer, and counts how many of the N the proxy has
closed at each second. Prints a markdown table for BENCHMARKS.md.

Usage: bench-idle-connections.py SWITCHYARD_BINARY MOCK_UPSTREAM_BINARY [N] [LABEL]
The proxy runs with header_read_timeout_ms = 2000 and the mock upstream behind it.
"""
import os, select, socket, subprocess, sys, tempfile, time, urllib.request

binary, mock_binary = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
label = sys.argv[4] if len(sys.argv) > 4 else binary
port, admin = 18400, 18401

mock = subprocess.Popen([mock_binary], stdout=subprocess.PIPE, text=True)
mock_addr = mock.stdout.readline().split()[1]
cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
cfg.write(f"""[server]
listen = "127.0.0.1:{port}"
header_read_timeout_ms = 2000
workers = 2
[admin]
listen = "127.0.0.1:{admin}"
[[upstream]]
name = "local"
base_url = "http://{mock_addr}/v1"
[routing]
default = "local"
""")
cfg.close()
proxy = subprocess.Popen([binary, "serve", "--config", cfg.name], env={**os.environ, "SWITCHYARD_LOG": "warn"})
try:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", admin)).close()
            break
        except OSError:
            time.sleep(0.05)
    openers = [b"", b"PRI * HTTP/2.0\r\n", b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"]
    start = time.monotonic()
    conns, opened_at = [], {}
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(openers[i % 3])
        s.setblocking(False)
        conns.append(s)
        opened_at[s] = time.monotonic()
    opened = time.monotonic() - start

    def timed(req):
        t = time.monotonic()
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.status, (time.monotonic() - t) * 1000

    health = timed(f"http://127.0.0.1:{admin}/healthz")
    chat = timed(urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=b'{"model":"m","messages":[{"role":"user","content":"hi"}]}',
        headers={"content-type": "application/json"}))

    # Watch until every connection is closed or has been open 7 s.
    open_set, lifetime = set(conns), {}
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in conns}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR)
    while open_set and time.monotonic() < opened_at[conns[-1]] + 7:
        for fd, _ in poller.poll(0.05):
            s = by_fd[fd]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data and s in open_set:
                poller.unregister(fd)
                open_set.discard(s)
                lifetime[s] = time.monotonic() - opened_at[s]
    kinds = ["silent", "half HTTP/2 preface", "half HTTP/1.1 head"]
    print(f"{label}: {n} connections, header_read_timeout_ms = 2000 (opened in {opened:.1f} s; "
          f"meanwhile /healthz {health[0]} in {health[1]:.1f} ms, a chat request {chat[0]} in {chat[1]:.1f} ms)\n")
    print("| connections | count | closed | lifetime of the closed: min / max | still open 7 s after their connect |")
    print("|---|---|---|---|---|")
    for k, kind in enumerate(kinds):
        group = conns[k::3]
        closed = [lifetime[s] for s in group if s in lifetime]
        span = f"{min(closed):.2f} s / {max(closed):.2f} s" if closed else "-"
        print(f"| {kind} | {len(group)} | {len(closed)} | {span} | {sum(1 for s in group if s in open_set)} |")
finally:
    proxy.terminate()
    mock.terminate()
    proxy.wait()
