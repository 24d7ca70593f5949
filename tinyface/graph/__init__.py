"""The graph: an ONNX file read (``onnx_file`` -> ``ir``), lowered to op records
(``lower`` -> ``ops``) and optimised by pure passes (``passes``); ``summary`` for
``tinyface inspect``.  Nothing here imports Numba, a kernel or the runtime."""
