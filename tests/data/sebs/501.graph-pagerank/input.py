"""faaslab's re-creation of SeBS's 501.graph-pagerank (not SeBS's file)."""

size_generators = {"test": 10, "small": 10000, "large": 100000}


def buckets_count():
    return (0, 0)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"size": size_generators[size], "seed": 42}


def validate_output(data_dir, input_config, output, language, storage=None):
    result = output.get("result")
    if not isinstance(result, float | int):
        return f"PageRank result is not a number ({type(result).__name__})"
    size = input_config["size"]
    # Barabasi(n, 10) with n <= 11 is a complete graph: every vertex ranks 1/n.
    if size <= 11 and abs(result - 1 / size) > 1e-9:
        return f"PageRank of vertex 0 is {result}, expected {1 / size}"
    if not 0 < result < 1:
        return f"PageRank of vertex 0 is {result}, not a probability"
    return None
