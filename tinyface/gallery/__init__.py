"""Face galleries: enroll a photo collection, then search it 1:N.

    gallery = tinyface.Gallery("people.db")
    tinyface.gallery.index(gallery, ["photos/"])        # identities from folder names
    for face in gallery.identify("group.jpg"):
        print(face.face.box, face.matches or "unknown")

* :mod:`~tinyface.gallery.store`: the crash-safe store (SQLite + a memory-mapped
  vectors file) and :class:`Gallery`;
* :mod:`~tinyface.gallery.index`: walking files, identities, batches, resume;
* :mod:`~tinyface.gallery.search`: exact 1:N search and identities;
* :mod:`~tinyface.gallery.check`: the integrity check;
* :mod:`~tinyface.gallery.distributed`: indexing on a Dask cluster.

Design and measurements: docs/gallery.md.
"""
from tinyface.gallery.index import index
from tinyface.gallery.search import Identification, Match
from tinyface.gallery.store import Gallery

__all__ = ["Gallery", "index", "Identification", "Match"]
