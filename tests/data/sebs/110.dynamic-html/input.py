"""faaslab's re-creation of SeBS's 110.dynamic-html (not SeBS's file): render a template."""

import re

size_generators = {"test": 10, "small": 1000, "large": 100000}


def buckets_count():
    return (0, 0)


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"username": "testname", "random_len": size_generators[size]}


def validate_output(data_dir, input_config, output, language, storage=None):
    # The Node.js handler returns the page itself; the Python one {"result": page}.
    page = output if isinstance(output, str) else (output or {}).get("result", "")
    if f"Welcome {input_config['username']}!" not in page:
        return "the page does not greet the user"
    numbers = re.findall(r"<li>(\d+)</li>", page)
    if len(numbers) != input_config["random_len"]:
        return f"{len(numbers)} random numbers on the page, expected {input_config['random_len']}"
    return None
