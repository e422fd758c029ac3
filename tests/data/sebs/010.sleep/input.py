"""faaslab's re-creation of SeBS's 010.sleep (not SeBS's file): sleep for a while."""

size_generators = {"test": 1, "small": 100, "large": 1000}


def buckets_count():
    return (0, 0)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"sleep": size_generators[size]}


def validate_output(data_dir, input_config, output, language, storage=None):
    # SeBS's Node.js version resolves to nothing once the timer fires; the
    # Python one reports how long it slept.
    if language == "nodejs":
        return None if output is None else f"expected no output, got {output!r}"
    if output.get("result") != input_config["sleep"]:
        return f"slept {output.get('result')!r}, expected {input_config['sleep']!r}"
    return None
