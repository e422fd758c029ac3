import six


def handler(event):
    return {"result": {"doubled": event["n"] * 2, "six": six.__version__}}
