"""The ``tinyface`` command line."""
