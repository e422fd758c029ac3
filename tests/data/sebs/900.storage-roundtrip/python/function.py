import hashlib
import io
import os
import uuid

from . import storage

client = storage.storage.get_instance()


def handler(event):
    bucket = event["bucket"]["bucket"]
    key = event["object"]["key"]
    local = f"/tmp/{uuid.uuid4().hex}-{key}"
    client.download(bucket, f"{event['bucket']['input']}/{key}", local)
    with open(local, "rb") as f:
        data = f.read().upper()
    os.remove(local)
    with open(os.path.join(os.path.dirname(__file__), "templates", "banner.txt")) as f:
        banner = f.read().strip()
    written = client.upload_stream(bucket, f"{event['bucket']['output']}/{key}", io.BytesIO(data))
    return {
        "result": {"bucket": bucket, "key": written, "sha256": hashlib.sha256(data).hexdigest()},
        "banner": banner,
    }
