"""faaslab's re-creation of SeBS's 501.graph-pagerank (not SeBS's file).

igraph's wheel is manylinux with C++ inside: it needs libstdc++.so.6 in the image.
"""

import datetime

import igraph


def handler(event):
    size = event.get("size")
    if "seed" in event:
        import random

        random.seed(event["seed"])
    generating_begin = datetime.datetime.now()
    graph = igraph.Graph.Barabasi(size, 10)
    generating_end = datetime.datetime.now()
    process_begin = datetime.datetime.now()
    result = graph.pagerank()
    process_end = datetime.datetime.now()
    us = datetime.timedelta(microseconds=1)
    return {
        "result": result[0],
        "measurement": {
            "graph_generating_time": (generating_end - generating_begin) / us,
            "compute_time": (process_end - process_begin) / us,
        },
    }
