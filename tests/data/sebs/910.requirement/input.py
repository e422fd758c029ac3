"""faaslab test benchmark (SeBS layout): a function with a requirement."""

size_generators = {"test": 1, "small": 10, "large": 100}


def buckets_count():
    return (0, 0)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"n": size_generators[size]}


def validate_output(data_dir, input_config, output, language, storage=None):
    doubled = output.get("result", {}).get("doubled")
    if doubled != 2 * input_config["n"]:
        return f"expected {2 * input_config['n']}, got {doubled!r}"
    return None
