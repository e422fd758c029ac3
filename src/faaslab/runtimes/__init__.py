"""What runs inside function containers, one directory per language (``python/``).

Nothing here is imported by the host-side code: the image recipes in
``faaslab._runtime`` copy these files into the runtime images.
"""
