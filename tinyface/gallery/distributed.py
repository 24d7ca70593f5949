"""Indexing on a Dask cluster: the workers embed, the client writes.

    from distributed import Client
    import tinyface.distributed
    client = Client("tcp://scheduler:8786")
    tinyface.distributed.index(client, ["/shared/photos"], "people.db")

The client plans as a local run does (:func:`tinyface.gallery.index.plan`:
walk, hash, skip what the gallery holds), submits each batch of files as one
task and commits the results in the plan's order (a result that comes early
waits for the ones before it), so it is the gallery's only writer, the store's
guarantees hold unchanged, and the gallery is the one a local run makes --
the same faces under the same ids, even where two files hold the same bytes
under different identities (the first in the walk wins).  At most
``in_flight`` batches (default: two per worker thread) are out or waiting at
a time, so memory stays bounded on both sides.  Workers must see the files at the same paths (a
shared filesystem) and have tinyface with the same model: each result says
which model made it, and a batch from another model is refused.

On a worker, the first task loads the model and the detector (once for the
worker process's life); tasks then run one at a time on a lock, each with
Numba's thread count set to the worker's number of threads, so each batch
uses all of them.  So give each worker process the cores it may use as threads
(``dask worker ADDRESS --nworkers 1 --nthreads 8``).

A worker lost mid-job: the scheduler runs its tasks again on another worker.
A task's future resolves once, so its batch is committed once, and a commit
drops files the gallery already holds in any case: nothing is lost or added
twice.  A batch whose workers keep dying (``distributed.scheduler.allowed-failures``,
3 by default) stops the run with an error naming its first file; the batches
committed so far stay, and running again resumes.

Compiled kernels: Numba caches them beside tinyface's sources, or in the
folder ``NUMBA_CACHE_DIR`` names (``TINYFACE_CACHE_DIR`` where tinyface
supports it): set it to a folder all workers share, and the first worker's
compile serves the others.
"""
import os
import threading
import time

from tinyface.errors import TinyfaceError
from tinyface.gallery.index import (DEFAULT_BATCH, IndexReport, commit, count_files,
                                    embed_batch, empty_batch, plan)
from tinyface.progress import Progress
from tinyface.gallery.store import Gallery

_pipelines = {}                 # per worker process: model source -> FacePipeline
_loading = threading.Lock()
_running = threading.Lock()


def worker_pipeline(model_source):
    """This worker process's pipeline for ``model_source``, loaded on first use."""
    with _loading:
        if model_source not in _pipelines:
            from tinyface.face.pipeline import FacePipeline
            from tinyface.face.model import FaceModel
            _pipelines[model_source] = FacePipeline(FaceModel.load(model_source))
        return _pipelines[model_source]


def worker_threads() -> int:
    """The worker's thread count (``--nthreads``), within the cores Numba may use."""
    import numba
    from distributed import get_worker
    return max(1, min(get_worker().state.nthreads, numba.config.NUMBA_NUM_THREADS))


def embed_task(model_source, items, aligned, all_faces):
    """The task a worker runs: :func:`~tinyface.gallery.index.embed_batch` of ``items``
    on all the worker's threads (Numba's thread count is per calling thread, so it is
    set in the task itself)."""
    from tinyface.runtime.threads import set_num_threads
    pipeline = worker_pipeline(model_source)
    with _running:
        set_num_threads(worker_threads())
        return embed_batch(pipeline, items, aligned, all_faces)


def worker_model_path(gallery):
    """How workers find the gallery's model: a path, or None for the bundled one."""
    model = gallery.model_given
    if model is None or isinstance(model, (str, os.PathLike)):
        return None if model is None else os.path.abspath(model)
    if getattr(model, "path", None) is None:
        raise TinyfaceError("distributed indexing needs the model as a file the workers can "
                            "read, not an in-memory model")
    return os.path.abspath(model.path)


def index(client, paths, gallery, identity_from="folder", aligned=False, all_faces=False,
          batch=DEFAULT_BATCH, progress=True, in_flight=None) -> IndexReport:
    """Index the photos under ``paths`` into ``gallery`` (a Gallery or a path) with the
    workers of the Dask ``client``; the arguments are those of
    :func:`tinyface.gallery.index.index`."""
    if not isinstance(gallery, Gallery):
        with Gallery(gallery) as opened:
            return index(client, paths, opened, identity_from, aligned, all_faces, batch,
                         progress, in_flight)
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    start = time.monotonic()
    gallery.check_model()
    source = worker_model_path(gallery)
    report = IndexReport(files=count_files(paths))
    bar = Progress("indexing", report.files, "files", enabled=progress, plain=True)
    limit = in_flight or 2 * max(1, sum(client.nthreads().values()))
    works = enumerate(plan(gallery, paths, identity_from, batch))
    waiting = as_completed()
    submitted = {}          # future key -> (position in the plan, work)
    done = {}               # position -> (work, result), finished but not yet committed
    committed = 0           # positions 0 .. committed - 1 are in the gallery

    def submit_next():
        """Submit the plan's next batch; one with no file to read is done at once."""
        for position, work in works:
            if not work.items:                            # only skipped files or problems
                done[position] = (work, empty_batch(gallery.card))
                continue
            future = client.submit(embed_task, source, work.items, aligned, all_faces, pure=False)
            submitted[future.key] = (position, work)
            waiting.add(future)
            return

    def commit_in_order():
        nonlocal committed
        while committed in done:
            work, result = done.pop(committed)
            report.add(work, result, len(commit(gallery, work, result)))
            bar.update(report.handled, faces=report.faces)
            committed += 1
            submit_next()

    for _ in range(limit):
        submit_next()
    commit_in_order()
    for future in waiting:
        position, work = submitted.pop(future.key)
        try:
            done[position] = (work, future.result())
        except KilledWorker:
            raise TinyfaceError(f"the workers running the batch from {work.items[0].path} kept "
                                f"dying; the batches committed so far are kept: run again to "
                                f"resume") from None
        future.release()
        commit_in_order()
    bar.close()
    report.seconds = time.monotonic() - start
    return report
