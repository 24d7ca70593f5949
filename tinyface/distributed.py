"""Indexing on a Dask cluster: ``tinyface.distributed.index(client, paths, gallery)``.

Needs the optional extra ``tinyface[dask]``; see :mod:`tinyface.gallery.distributed`.
"""
from tinyface.gallery.distributed import index

__all__ = ["index"]
