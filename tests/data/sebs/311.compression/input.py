"""faaslab's re-creation of SeBS's 311.compression (not SeBS's file): compress a directory."""

import gzip
import os
import tempfile

DATASET = "acmart-master"


def buckets_count():
    return (1, 1)


def upload_files(data_root, data_dir, upload_func):
    for root, _, files in os.walk(data_dir):
        prefix = os.path.relpath(root, data_root)
        for file in files:
            upload_func(0, prefix + "/" + file, os.path.join(root, file))


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    for directory in sorted(os.listdir(data_dir)):
        upload_files(data_dir, os.path.join(data_dir, directory), upload_func)
    return {
        "object": {"key": DATASET},
        "bucket": {"bucket": benchmarks_bucket, "input": input_paths[0], "output": output_paths[0]},
    }


def _entries(archive):
    """The Node.js version's format: (u32 name length, name, u32 size, content) per file."""
    data, at, entries = gzip.decompress(archive), 0, {}
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        name = data[at + 4 : at + 4 + length].decode()
        at += 4 + length
        size = int.from_bytes(data[at : at + 4], "big")
        entries[name] = data[at + 4 : at + 4 + size]
        at += 4 + size
    return entries


def validate_output(data_dir, input_config, output, language, storage=None):
    result = (output or {}).get("result", {})
    key = result.get("key", "")
    prefix = input_config["bucket"]["output"]
    # storage.upload makes the name unique before its last extension: NAME.tar.<hex>.gz
    if not key.startswith(f"{prefix}/{DATASET}.tar.") or not key.endswith(".gz"):
        return f"output key {key!r} is not the dataset's archive under {prefix}/"
    if storage is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "archive")
        storage.download(input_config["bucket"]["bucket"], key, local)
        with open(local, "rb") as f:
            entries = _entries(f.read())
    expected = {}
    root = os.path.join(data_dir, DATASET)
    for directory, _, files in os.walk(root):
        for file in files:
            path = os.path.join(directory, file)
            with open(path, "rb") as f:
                expected[os.path.relpath(path, root)] = f.read()
    # Names in the archive are relative to the download directory: <input prefix>/<dataset>/...
    found = {name.split(f"{DATASET}/", 1)[-1]: data for name, data in entries.items()}
    if found != expected:
        return f"the archive holds {sorted(found)}, expected {sorted(expected)}"
    return None
