"""faaslab's demo function: allocates the memory asked for, holds it, answers.

A SeBS-style function: ``handler(event) -> dict``.
"""

import hashlib
import time
from typing import Any


def handler(event: dict[str, Any]) -> dict[str, Any]:
    megabytes = int(event.get("allocate_mb", 0))
    block = bytearray(megabytes * 1024 * 1024)
    for offset in range(0, len(block), 4096):  # touch every page: real, resident memory
        block[offset] = 1
    time.sleep(float(event.get("hold_s", 0)))
    digest = hashlib.sha256(block[:1024]).hexdigest()[:12]
    return {"allocated_mb": megabytes, "digest": digest}
