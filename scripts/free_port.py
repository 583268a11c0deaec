#!/usr/bin/env python3
"""Print a TCP port on 127.0.0.1 that is free right now.

Binds port 0 on loopback, reads the port the kernel chose, closes the socket.
Another process could take the port before the caller binds it; the start-up
helpers retry with a new port when that happens.
"""
import socket
import sys


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    print(free_port())
    sys.exit(0)
