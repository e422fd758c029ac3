"""faaslab test benchmark (SeBS layout): read an input object, write its upper-cased copy."""

import hashlib
import os
import tempfile

# Which file of the data directory each size works on.
files = {"test": "hello.txt", "small": "hello.txt", "large": "hello.txt"}


def buckets_count():
    return (1, 1)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    for name in sorted(os.listdir(data_dir)):
        upload_func(0, name, os.path.join(data_dir, name))
    return {
        "object": {"key": files[size]},
        "bucket": {"bucket": benchmarks_bucket, "input": input_paths[0], "output": output_paths[0]},
    }


def validate_output(data_dir, input_config, output, language, storage=None):
    result = output.get("result", {})
    key = result.get("key", "")
    if not key.startswith(input_config["bucket"]["output"] + "/"):
        return f"output key {key!r} is not under the output prefix"
    with open(os.path.join(data_dir, input_config["object"]["key"]), "rb") as f:
        expected = f.read().upper()
    if result.get("sha256") != hashlib.sha256(expected).hexdigest():
        return "the function reports another digest than the upper-cased input's"
    if storage is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "out")
        storage.download(input_config["bucket"]["bucket"], key, local)
        with open(local, "rb") as f:
            if f.read() != expected:
                return "the stored output is not the upper-cased input"
    return None
