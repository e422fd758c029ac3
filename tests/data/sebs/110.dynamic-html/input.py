"""The event of 110.dynamic-html: a user name and how many random numbers to render."""

# How many random numbers each SeBS input size renders.
RANDOM_NUMBERS = {"test": 10, "small": 1000, "large": 100000}


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_func
):
    return {"username": "testname", "random_len": RANDOM_NUMBERS[size]}


def validate_output(data_dir, input_config, output, language, storage):
    html = output.get("result", "") if isinstance(output, dict) else ""
    if input_config["username"] not in html:
        return "the page does not greet the user"
    if html.count("<li>") != input_config["random_len"]:
        return f"expected {input_config['random_len']} numbers, got {html.count('<li>')}"
    return None
