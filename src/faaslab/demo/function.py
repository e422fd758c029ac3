"""faaslab's demo function, a SeBS-style ``handler(event) -> dict``.

It allocates (and touches) the memory asked for and holds it a moment, so
the memory figures have something to show; given a bucket and a key it
reads that object through SeBS's storage helper and writes its digest back.
"""

import hashlib
import io
import time
from typing import Any

from . import storage


def handler(event: dict[str, Any]) -> dict[str, Any]:
    megabytes = int(event.get("allocate_mb", 0))
    block = bytearray(megabytes * 1024 * 1024)
    for offset in range(0, len(block), 4096):  # touch every page: real, resident memory
        block[offset] = 1
    time.sleep(float(event.get("hold_s", 0)))
    result: dict[str, Any] = {"allocated_mb": megabytes}
    if "bucket" in event:
        client = storage.storage.get_instance()
        data = client.download_stream(event["bucket"], event["key"])
        digest = hashlib.sha256(data).hexdigest()
        result["sha256"] = digest
        result["written"] = client.upload_stream(
            event["bucket"], "digest.txt", io.BytesIO(digest.encode())
        )
    return result
