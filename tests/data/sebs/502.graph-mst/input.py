"""faaslab's re-creation of SeBS's 502.graph-mst (not SeBS's file)."""

size_generators = {"test": 10, "small": 10000, "large": 100000}


def buckets_count():
    return (0, 0)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"size": size_generators[size], "seed": 42}


def validate_output(data_dir, input_config, output, language, storage=None):
    # spanning_tree(None, False) gives the tree's edge ids; the handler returns the first.
    edge = output.get("result")
    size = input_config["size"]
    if not isinstance(edge, int) or isinstance(edge, bool):
        return f"expected an edge id, got {edge!r}"
    # Barabasi(n, 10) has fewer than 10 n edges.
    if not 0 <= edge < 10 * size:
        return f"edge id {edge} is not an edge of a Barabasi({size}, 10) graph"
    return None
