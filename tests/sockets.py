"""Which addresses the servers of a test listen on, from the kernel's socket tables."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import List

LISTEN = "0A"  # the TCP state in /proc/net/tcp


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp (four-byte words in host order, little-endian here) as text."""
    words = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8))
    return socket.inet_ntop(socket.AF_INET if len(words) == 4 else socket.AF_INET6, words)


def listening_addresses(port: int) -> List[str]:
    """The local addresses a TCP socket listens on at `port` (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == LISTEN and int(port_hex, 16) == port:
                found.append(_address(address))
    return found
