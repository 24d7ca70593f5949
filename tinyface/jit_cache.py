"""Where Numba keeps tinyface's compiled kernels.

Every kernel (``tinyface/kernels``) is compiled with ``cache=True``.  Numba
writes each kernel's cache to the first of these it can write to:
``NUMBA_CACHE_DIR``; ``__pycache__`` beside the kernel's source; its
user-wide cache (``$XDG_CACHE_HOME/numba``, else ``~/.cache/numba``).  So a
read-only install (system-wide, or in a container image) caches in the
user's home.

``TINYFACE_CACHE_DIR`` chooses the folder instead: it sets ``NUMBA_CACHE_DIR``
for the process (other Numba code in it that caches will cache there too).

Where none of the three can be written (a read-only package and no writable
home), Numba would refuse to define the kernels at all.  tinyface then caches
in a private temporary folder, removed at exit, and warns: each process
compiles anew until ``TINYFACE_CACHE_DIR`` names a writable folder.

Numba checks a cached kernel against its own source file only (its modification
time and size), not against the files whose functions it inlined: after an edit
of ``gemm.py`` the cached fused block of ``block.py`` would still be the old
code.  So tinyface stamps the kernels' cache folder with a digest of every
``tinyface/kernels/*.py`` and empties the folder of compiled kernels when the
digest differs (:func:`drop_stale`): any change to any kernel source recompiles
them all once.

Numba picks a kernel's cache folder when the kernel is defined, from
``numba.config.CACHE_DIR``, so :func:`apply_environment` runs first thing in
``tinyface/kernels/__init__.py``, before any kernel module is imported.  It sets
``numba.config.CACHE_DIR`` as well as the variable, so it holds even when the
program imported Numba before tinyface.
"""
import atexit
import functools
import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numba
from numba.misc.appdirs import AppDirs

KERNELS = Path(__file__).resolve().parent / "kernels"


def numba_default_folders():
    """Where Numba caches the kernels when NUMBA_CACHE_DIR is not set, in its order."""
    return [KERNELS / "__pycache__", Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)]


def _writable(folder):
    """Can a file be created in ``folder`` (made if missing)?  Numba's own test."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def apply_environment():
    folder = os.environ.get("TINYFACE_CACHE_DIR")
    if not folder and not os.environ.get("NUMBA_CACHE_DIR"):
        defaults = numba_default_folders()
        if not any(map(_writable, defaults)):
            folder = tempfile.mkdtemp(prefix="tinyface-kernels-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            warnings.warn(f"cannot cache compiled kernels: neither {defaults[0]} nor {defaults[1]} "
                          f"can be written; compiling into {folder}, removed at exit; set "
                          f"TINYFACE_CACHE_DIR to a writable folder to keep them", stacklevel=3)
    if folder:
        os.environ["NUMBA_CACHE_DIR"] = folder
        numba.config.CACHE_DIR = folder


STAMP = "tinyface-kernels.sha256"


@functools.cache
def kernels_digest():
    """sha256 of the kernels' sources: every ``tinyface/kernels/*.py``, in name order; read
    once per process (:func:`drop_stale` at import, ``tools.warmup``'s marker later), as the
    kernels a process compiled are those of the sources it imported."""
    h = hashlib.sha256()
    for path in sorted(KERNELS.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def is_cached(dispatcher, types):
    """Does the JIT cache's index list the specialisation of ``dispatcher`` for argument
    ``types`` on this CPU?  Reads the kernel's index file only, not its code (Numba's
    ``_cache`` and index are internal, and read here only)."""
    key = dispatcher._cache._index_key(types, dispatcher.targetctx.codegen())
    return key in dispatcher._cache._cache_file._load_index()


def has_code(dispatcher):
    """Has ``dispatcher`` a specialisation, any, compiled in this process or in the JIT cache
    for this CPU (and today's bytecode of the kernel)?"""
    if dispatcher.overloads:
        return True
    ours = dispatcher._cache._index_key((), dispatcher.targetctx.codegen())[1:]
    return any(key[1:] == ours for key in dispatcher._cache._cache_file._load_index())


def kernels_cache_folder(probe):
    """The folder Numba caches the kernels in: that of ``probe``, a function defined in a
    module of ``tinyface/kernels`` (Numba picks the first of its locators that can write;
    ``numba.core.caching`` is internal, and used here only)."""
    from numba.core.caching import CacheImpl
    source = probe.__code__.co_filename
    for locator_class in CacheImpl._locator_classes:
        locator = locator_class.from_function(probe, source)
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def drop_stale(probe):
    """Remove the compiled kernels from their cache folder unless its stamp is the digest
    of today's kernel sources; then stamp it.  A folder that cannot be written is left."""
    folder = kernels_cache_folder(probe)
    if folder is None:
        return
    stamp, digest = folder / STAMP, kernels_digest()
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        for path in list(folder.glob("*.nbi")) + list(folder.glob("*.nbc")):
            path.unlink(missing_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass
