"""Faces in photos: reading images, MTCNN detection, five-point alignment, the pipeline.

The one-call functions ``detect`` and ``align`` are exported from
:mod:`tinyface` itself (here those names are the submodules
:mod:`tinyface.face.detect` and :mod:`tinyface.face.align`).
"""
from tinyface.face.pipeline import AlignedFace, FaceEmbedding, FacePipeline, embed_photo

__all__ = ["FacePipeline", "AlignedFace", "FaceEmbedding", "embed_photo"]
