"""Faces in photos: reading images, MTCNN detection, five-point alignment, the
face model and the photo-to-embedding pipeline.

Modules: ``image`` (decoding), ``mtcnn`` and ``detection``, ``alignment``,
``metadata`` (what a face model expects), ``model`` (``FaceModel``: embeddings)
and ``pipeline`` (``FacePipeline``: photo -> detect -> align -> embed).  Nothing
is imported here, so ``tinyface.face.metadata`` loads neither Pillow nor Numba.
"""
