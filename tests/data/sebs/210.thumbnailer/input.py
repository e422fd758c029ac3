"""faaslab's re-creation of SeBS's 210.thumbnailer (not SeBS's file): resize an image to a PNG."""

import glob
import os
import struct
import tempfile

IMAGE = "faaslab-test-gradient.jpg"


def buckets_count():
    return (1, 1)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    for file in glob.glob(os.path.join(data_dir, "*.jpg")):
        upload_func(0, os.path.relpath(file, data_dir), file)
    return {
        "object": {"key": IMAGE, "width": 200, "height": 200},
        "bucket": {"bucket": benchmarks_bucket, "input": input_paths[0], "output": output_paths[0]},
    }


def validate_output(data_dir, input_config, output, language, storage=None):
    key = (output or {}).get("key", "")
    prefix = input_config["bucket"]["output"]
    if not key.startswith(prefix + "/") or not key.endswith(".png"):
        return f"output key {key!r} is not a PNG under {prefix}/"
    if storage is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "thumbnail.png")
        storage.download(input_config["bucket"]["bucket"], key, local)
        with open(local, "rb") as f:
            head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return "the stored thumbnail is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    wanted = input_config["object"]
    # sharp's resize(w, h) covers the box and crops to it: exactly w x h.
    if (width, height) != (wanted["width"], wanted["height"]):
        return f"the thumbnail is {width}x{height}, expected {wanted['width']}x{wanted['height']}"
    return None
