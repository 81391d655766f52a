"""The chaos testnet's partitions: nodes in network namespaces on two bridges, cut apart and
joined again by the kernel (root only; skipped elsewhere)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from wekacoin.testing.netns import NetLab, unavailable
from wekacoin.waiting import wait_until

WHY_NOT = unavailable()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no partitions here: {WHY_NOT}")

SERVE = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000)); s.listen(); s.settimeout(20)
while True:
    c, _ = s.accept(); c.sendall(b"up"); c.close()
"""

PROBE = """
import socket, sys
try:
    print(socket.create_connection((sys.argv[1], 7000), timeout=1.0).recv(2).decode())
except OSError:
    print("cut")
"""


def probe(lab: NetLab, src: int, dst: int) -> str:
    done = subprocess.run([*lab.command(src), sys.executable, "-c", PROBE, lab.host(dst)],
                          capture_output=True, text=True, timeout=20)
    return done.stdout.strip()


def from_runner(lab: NetLab, dst: int) -> str:
    try:
        with socket.create_connection((lab.host(dst), 7000), timeout=1.0) as s:
            return s.recv(2).decode()
    except OSError:
        return "cut"


def test_a_split_cuts_exactly_the_links_across_it_and_healing_restores_them():
    with NetLab(3, tag="wkt") as lab:
        servers = [subprocess.Popen([*lab.command(i), sys.executable, "-c", SERVE, lab.host(i)])
                   for i in range(3)]
        try:
            wait_until(lambda: all(from_runner(lab, i) == "up" for i in range(3)), timeout=20,
                       interval=0.1, what="the three servers to listen")
            assert [probe(lab, 0, 1), probe(lab, 1, 2), probe(lab, 2, 0)] == ["up"] * 3
            lab.split({2})
            assert probe(lab, 0, 1) == "up"  # the majority side still talks
            assert probe(lab, 0, 2) == "cut" and probe(lab, 2, 1) == "cut"
            assert from_runner(lab, 2) == "cut" and from_runner(lab, 0) == "up"
            lab.heal()
            assert [probe(lab, 0, 2), probe(lab, 2, 1), from_runner(lab, 2)] == ["up"] * 3
        finally:
            for server in servers:  # only the processes this test started
                server.kill()
                server.wait()
    assert subprocess.run(["ip", "netns", "list"], capture_output=True,
                          text=True).stdout.count("wktn") == 0  # nothing left behind



ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000)); s.listen(); s.settimeout(30)
while True:
    c, _ = s.accept()
    while data := c.recv(65536):
        c.sendall(data)
    c.close()
"""

ROUND_TRIP = """
import socket, sys, time
payload = bytes(range(256)) * 800
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
start = time.monotonic()
s.sendall(payload)
got = b""
while len(got) < len(payload):
    got += s.recv(65536)
print(time.monotonic() - start, got == payload)
"""


def listening(host: str) -> bool:
    try:
        socket.create_connection((host, 7000), timeout=1.0).close()
        return True
    except OSError:
        return False


def test_relays_carry_every_byte_in_order_with_the_link_latency_and_nothing_bypasses_them():
    from wekacoin.testing.links import LinkSpec, Relays

    with NetLab(2, tag="wkr", isolated=True) as lab:
        echo = subprocess.Popen([*lab.command(1), sys.executable, "-c", ECHO, lab.host(1)])
        spec = LinkSpec(latency_ms=(60, 120), jitter_ms=0, loss=0.0)
        try:
            with Relays([lab.host(0), lab.host(1)], 7000, lab.runner_host, 27400, spec,
                        seed=5) as relays:
                wait_until(lambda: listening(lab.host(1)), timeout=20, interval=0.1,
                           what="the echo server to listen")
                assert probe(lab, 0, 1) == "cut"  # isolated: node 1's own address is unreachable
                done = subprocess.run(
                    [*lab.command(0), sys.executable, "-c", ROUND_TRIP, lab.runner_host,
                     str(relays.port(0, 1))], capture_output=True, text=True, timeout=60)
                seconds, intact = done.stdout.split()
                assert intact == "True", done.stderr  # every byte, in order
                round_trip = relays.latency_ms[(0, 1)] + relays.latency_ms[(1, 0)]
                assert float(seconds) >= round_trip / 1000  # never faster than the links
                assert relays.bytes_relayed >= 2 * 256 * 800

                # a node killed mid-connection resets it: the relay serves the next one
                hanging = socket.create_connection((lab.runner_host, relays.port(0, 1)), 5)
                hanging.sendall(b"x" * 1000)
                echo.kill()
                echo.wait()
                echo = subprocess.Popen([*lab.command(1), sys.executable, "-c", ECHO,
                                         lab.host(1)])
                wait_until(lambda: listening(lab.host(1)), timeout=20, interval=0.1,
                           what="the restarted echo server to listen")
                hanging.close()
                again = subprocess.run(
                    [*lab.command(0), sys.executable, "-c", ROUND_TRIP, lab.runner_host,
                     str(relays.port(0, 1))], capture_output=True, text=True, timeout=60)
                assert again.stdout.split()[1:] == ["True"], again.stderr
        finally:
            echo.kill()
            echo.wait()
