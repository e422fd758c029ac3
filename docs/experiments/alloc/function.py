"""Allocates and touches ``allocate_mb`` MB, then hashes it ``rounds`` times.

Memory grows with ``allocate_mb``; time grows with ``rounds`` and shrinks
with the CPU share the deployment gives the instance.
"""

import hashlib


def handler(event):
    size = int(event.get("allocate_mb", 16)) * 1024 * 1024
    block = bytearray(size)
    for i in range(0, size, 4096):  # touch every page: the kernel charges only touched ones
        block[i] = 1
    digest = b""
    for _ in range(int(event.get("rounds", 1))):
        digest = hashlib.sha256(block).digest()
    return {"allocated_bytes": size, "sha256": digest.hex()}
