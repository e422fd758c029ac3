"""Code that runs inside each function container (standard library + ``minio``).

``server.py`` is copied into the runtime image as ``/opt/faaslab/server.py`` and
run as a script; ``storage.py`` sits next to it and is offered to functions as
``from . import storage`` (SeBS's helper). Neither module imports anything from
faaslab: the host side only needs their file paths.
"""
