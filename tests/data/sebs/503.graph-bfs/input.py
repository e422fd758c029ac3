"""faaslab's re-creation of SeBS's 503.graph-bfs (not SeBS's file)."""

size_generators = {"test": 10, "small": 10000, "large": 100000}


def buckets_count():
    return (0, 0)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"size": size_generators[size], "seed": 42}


def validate_output(data_dir, input_config, output, language, storage=None):
    # igraph's bfs(0): (visited vertices, layer starts, parents).
    result = output.get("result")
    size = input_config["size"]
    try:
        vertices, layers, parents = result
    except (TypeError, ValueError):
        return f"expected (vertices, layers, parents), got {result!r}"
    if sorted(vertices) != list(range(size)) or vertices[0] != 0:
        return f"the search from vertex 0 did not visit every vertex once: {vertices!r}"
    # The root has no parent: -1 (older igraph releases said 0, itself).
    if (
        len(parents) != size
        or parents[0] not in (-1, 0)
        or not all(0 <= p < size for p in parents[1:])
    ):
        return f"unexpected parents {parents!r}"
    if layers[0] != 0 or layers[-1] != size:
        return f"unexpected layer starts {layers!r}"
    return None
