"""gallery.distributed: indexing on a local Dask cluster of two worker processes
(loopback only), with and without a worker killed mid-job, gives the gallery a
local run gives, face ids included.  The photos hold two files with the same
bytes in two people's folders (p10, p11): the first in the walk must win, as
locally, however the workers' results arrive."""
import logging
import os
import signal
import threading
import time

import pytest
from PIL import Image

import tinyface
import tinyface.distributed
from gallery_testing import PHOTO, assert_same_faces, committed_batches, crops_tree, open_ok
from tinyface.gallery.index import index as local_index
from tinyface.gallery.store import Gallery

distributed = pytest.importorskip("distributed", reason="needs the dask extra: pip install 'tinyface[dask]'")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """16 aligned crops of 8 people (one repeated), the astronaut photo, a broken file."""
    root = crops_tree(tmp_path_factory.mktemp("photos"), pairs=range(8, 16))
    (root / "astronaut").mkdir()
    Image.open(PHOTO).convert("RGB").save(root / "astronaut" / "a.png")
    (root / "p9" / "broken.jpg").write_bytes(b"junk")
    return root


@pytest.fixture(scope="module")
def local_gallery(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp("local") / "g.db"
    with Gallery(path, tinyface.load()) as g:
        local_index(g, [photos], batch=2, progress=False)
    return path


def same_ids(gallery):
    return [(f.id, f.sha256, f.face_index) for f in gallery.faces()]


def test_a_cluster_gives_the_local_gallery(client, photos, local_gallery, tmp_path):
    report = tinyface.distributed.index(client, [photos], tmp_path / "g.db", batch=2, progress=False)
    assert report.faces == 16 and report.problems == {"unreadable": 1}
    with open_ok(tmp_path / "g.db") as g, open_ok(local_gallery) as local:
        assert_same_faces(g, local)
        assert same_ids(g) == same_ids(local)        # committed in the plan's order
    again = tinyface.distributed.index(client, [photos], tmp_path / "g.db", batch=2, progress=False)
    assert again.faces == 0 and again.skipped == 18


def test_a_worker_killed_mid_job_loses_and_repeats_nothing(client, photos, local_gallery, tmp_path):
    path = tmp_path / "g.db"
    before = client.run(os.getpid)
    victim = sorted(before.values())[0]

    def kill_when_a_batch_is_in():
        while committed_batches(path) == 0:
            time.sleep(0.01)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_a_batch_is_in)
    killer.start()
    report = tinyface.distributed.index(client, [photos], path, batch=2, progress=False)
    killer.join()
    assert report.faces == 16
    with open_ok(path) as g, open_ok(local_gallery) as local:
        assert_same_faces(g, local)
        assert same_ids(g) == same_ids(local)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()      # the nanny started a new worker


def test_each_worker_embeds_on_as_many_numba_threads_as_it_has(client, photos):
    from tinyface.gallery.distributed import embed_task
    from tinyface.gallery.index import Item, file_sha256
    path = str(photos / "p8" / "8_fn_0_aligned.jpg")
    item = Item(path, file_sha256(path), "p8")

    def threads_of_a_task(items):
        embed_task(None, items, True, False)
        return tinyface.get_num_threads()
    for address, threads in client.nthreads().items():       # 1 each, where Numba's default is 2
        assert client.submit(threads_of_a_task, [item], workers=[address], pure=False).result() == threads


def test_the_command_line_runs_on_a_scheduler_address(client, photos, tmp_path, capsys):
    from cli_testing import run
    code, out, err = run(capsys, "index", photos / "p8", "--gallery", tmp_path / "g.db",
                         "--dask", client.scheduler.address)
    assert code == 0 and "2 files: 2 faces added" in err
    with open_ok(tmp_path / "g.db") as g:
        assert g.identities() == [("p8", 2)]
