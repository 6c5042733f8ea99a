"""`make run` listens on loopback only: the broker, PostgreSQL, the metrics endpoints, the
dashboard, and each Spark driver's UI, RPC and block manager (BIND_HOST's default)."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path

import pytest

from tests.embedded_run import embedded_run, wait_until

pytestmark = pytest.mark.integration

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_SOCKET = re.compile(r"socket:\[(\d+)\]")


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Every listening TCP socket of this machine: inode -> (address, port)."""
    found = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != _LISTEN:
                continue
            address_hex, port_hex = fields[1].split(":")
            packed = bytes.fromhex(address_hex)
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            words = b"".join(packed[i : i + 4][::-1] for i in range(0, width, 4))
            family = socket.AF_INET if width == 4 else socket.AF_INET6
            found[int(fields[9])] = (socket.inet_ntop(family, words), int(port_hex, 16))
    return found


def descendants(root: int) -> set[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def socket_inodes(pids: set[int]) -> dict[int, int]:
    """inode -> pid of every socket that these processes hold."""
    held = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                match = _SOCKET.fullmatch(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if match:
                held[int(match[1])] = pid
    return held


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def test_every_listener_of_make_run_is_on_loopback(tmp_path: Path) -> None:
    """Once every service serves (the banner's ports all listen), each listening socket of
    `make run`'s processes, and PostgreSQL's (a daemon, not a descendant), is bound to a
    loopback address; the Spark drivers' own ports (RPC, block manager) are among them."""
    with embedded_run(tmp_path, PRODUCER_RATE="20") as run:
        announced = {int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)", run.banner)}
        announced |= {run.kafka_port, run.kafka_port + 1, run.postgres_port}

        def ours() -> dict[tuple[str, int], str] | None:
            sockets = listening_sockets()
            held = socket_inodes(descendants(run.pid))
            mine = {sockets[inode]: command(pid) for inode, pid in held.items() if inode in sockets}
            mine.update(
                {address: "postgres" for address in sockets.values() if address[1] == run.postgres_port}
            )
            return mine if announced <= {port for _, port in mine} else None

        listeners = wait_until("every announced port listening", ours, 240)
        exposed = {
            f"{address}:{port}": cmd for (address, port), cmd in listeners.items() if not is_loopback(address)
        }
        assert not exposed, exposed
        # Beyond the announced ports: the drivers' RPC and block manager, py4j, Python workers.
        spark = [port for (_, port), cmd in listeners.items() if "pyspark" in cmd or "jobs." in cmd]
        assert len(spark) > 4, listeners
