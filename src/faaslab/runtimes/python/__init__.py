"""Code that runs inside each function container (standard library + ``minio``).

``server.py`` is copied into the runtime image as ``/opt/faaslab/server.py`` and
run as a script; ``storage.py`` and ``nosql.py`` sit next to it and are offered
to functions as ``from . import storage`` / ``from . import nosql`` (SeBS's
helpers). None of them imports anything from faaslab: the host side only needs
their file paths.
"""
