"""Control messages between the trusted parent and the zygote: JSON over a SOCK_SEQPACKET
socketpair made before bubblewrap starts, with a job's pipe ends attached as SCM_RIGHTS.

Only trusted code speaks on this channel: the zygote closes its end in every process it forks
before anything of a job runs, so a model can neither read it nor forge a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

MAX_MESSAGE = 64 * 1024
MAX_FDS = 8


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the fds that came with it; ``(None, [])`` when the other end closed."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not data:
        for fd in fds:
            _close(fd)
        return None, []
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("control message is not an object")
    return message, list(fds)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
