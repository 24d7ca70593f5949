"""The package as users install it: the sdist and the wheel carry the bundled
weights, an installed wheel runs from any folder and uninstalls without a
trace, and where its folder is read-only it still caches compiled kernels.

One sdist and one wheel are built per module with ``python -m build``, which
builds the wheel from the unpacked sdist: a file the sdist lacks is missing
from the wheel too.  Installed copies run in subprocesses, from a temporary
folder outside the repository, with this environment's Python (numpy, numba,
onnx and pillow come from it) and ``PYTHONPATH`` set to the install.

Read-only: tests run as root in CI, and root writes through permission bits.
So the runs of the read-only tests drop every capability first
(``setpriv``): they stay uid 0, the owner of the files, and an owner without
CAP_DAC_OVERRIDE obeys the bits.  Each such test checks that it really cannot
write into the install before it trusts what it sees.
"""
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import onnx
import pytest

import tinyface
from onnx_builders import GraphBuilder

REPO = Path(__file__).resolve().parent.parent
VERSION = tinyface.__version__
WEIGHT_FILES = ["mobilefacenet-relu6-opset18.onnx", "mobilefacenet-relu6-opset18.json",
                "mobilefacenet-int8.onnx", "mobilefacenet-int8.json",
                "LICENSE-mobilefacenet-weights", "README.md",
                "mtcnn/pnet.onnx", "mtcnn/rnet.onnx", "mtcnn/onet.onnx",
                "mtcnn/LICENSE-facenet-pytorch", "mtcnn/README.md"]
PHOTOS = [REPO / "examples" / "astronaut.jpg", REPO / "examples" / "astronaut_variant.jpg"]
ALIGNED_FACE = REPO / "tests" / "data" / "lfw_0_fn_0_aligned.jpg"
# Settings of the developer's shell that would change what an installed copy does.
CLEARED = {"PYTHONPATH", "TINYFACE_WEIGHTS", "TINYFACE_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME"}
UNPRIVILEGED = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"] if os.geteuid() == 0 else []


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def tree(root):
    """Every file and folder under ``root`` -> (size, mtime in ns); folders have size None."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(root).rglob("*")}


def pip(*args):
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def run(cmd, site, cwd, home, unprivileged=False, timeout=600, **env):
    """Run ``cmd`` with the install at ``site`` first on the path, HOME at ``home``."""
    environ = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environ.update(PYTHONPATH=str(site), HOME=str(home), **{k: str(v) for k, v in env.items()})
    return subprocess.run((UNPRIVILEGED if unprivileged else []) + [str(c) for c in cmd],
                          cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(sdist path, wheel path), built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / f"tinyface-{VERSION}.tar.gz", out / f"tinyface-{VERSION}-py3-none-any.whl"


def install(wheel, target):
    """``pip install --target``: the package, its dist-info and bin/tinyface in ``target``."""
    pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel))
    return target


@pytest.fixture
def outside(tmp_path):
    """A working folder and a HOME, both outside the repository."""
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    return tmp_path / "work", tmp_path / "home"


# -- what the archives hold -----------------------------------------------------------------

def test_wheel_holds_every_module_and_the_weights_with_their_licences(dists):
    with zipfile.ZipFile(dists[1]) as whl:
        names = set(whl.namelist())
        modules = {f"tinyface/{p.relative_to(REPO / 'tinyface').as_posix()}"
                   for p in (REPO / "tinyface").rglob("*.py")}
        weights = {f"tinyface/weights/{name}" for name in WEIGHT_FILES}
        assert modules <= names, sorted(modules - names)
        assert weights <= names, sorted(weights - names)
        for name in WEIGHT_FILES:
            assert sha256(whl.read(f"tinyface/weights/{name}")) == sha256((REPO / "weights" / name).read_bytes())
    assert all(n.startswith(("tinyface/", f"tinyface-{VERSION}.dist-info/")) for n in names), \
        sorted(n for n in names if not n.startswith("tinyface"))
    assert not [n for n in names if "__pycache__" in n or n.endswith((".nbi", ".nbc", ".pyc"))]


def test_sdist_holds_the_weights_at_the_top_as_in_the_repository(dists):
    with tarfile.open(dists[0]) as sdist:
        names = set(sdist.getnames())
        top = f"tinyface-{VERSION}"
        assert {f"{top}/weights/{name}" for name in WEIGHT_FILES} <= names
        assert {f"{top}/pyproject.toml", f"{top}/README.md", f"{top}/tinyface/paths.py"} <= names
        model = sdist.extractfile(f"{top}/weights/{WEIGHT_FILES[0]}").read()
    assert sha256(model) == sha256((REPO / "weights" / WEIGHT_FILES[0]).read_bytes())


# -- install, run, uninstall ----------------------------------------------------------------

def test_uninstall_removes_every_file_the_install_added(dists, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    before = tree(venv)
    pip("--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", str(dists[1]))
    added = set(tree(venv)) - set(before)
    site = next(p for p in (venv / "lib").glob("python*/site-packages"))
    for name in WEIGHT_FILES:
        assert str((site / "tinyface" / "weights" / name).relative_to(venv)) in added
    assert "bin/tinyface" in added
    pip("--python", str(venv / "bin" / "python"), "uninstall", "--yes", "tinyface")
    assert tree(venv).keys() == before.keys()


# -- the JIT cache of a read-only install ---------------------------------------------------

@pytest.fixture
def read_only_site(dists, tmp_path):
    """An install nobody may write to (the runs drop root's override); made writable again after."""
    site = install(dists[1], tmp_path / "site")
    for p in [site, *site.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    yield site
    for p in [site, *site.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)


def run_twice(cmd, site, work, home, cache, **env):
    """Run ``cmd`` in two fresh processes that cannot write to ``site``; return their
    outputs and the snapshots of ``cache`` after each."""
    probe = run([sys.executable, "-c", f"open({str(site / 'tinyface' / 'probe')!r}, 'w')"],
                site, work, home, unprivileged=True)
    assert probe.returncode != 0 and "PermissionError" in probe.stderr, "the install is writable"
    outputs, snapshots = [], []
    for _ in range(2):
        done = run(cmd, site, work, home, unprivileged=True, **env)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
        snapshots.append(tree(cache) if cache.exists() else {})
    return outputs, snapshots


def assert_second_run_used_the_cache(snapshots):
    """Run 1 saved index (.nbi) and code (.nbc) files; run 2 loaded them: had it compiled
    anything, Numba would have saved it, adding files or rewriting an index."""
    first, second = snapshots
    assert any(name.endswith(".nbi") for name in first) and any(name.endswith(".nbc") for name in first)
    assert second == first


def test_read_only_install_finds_its_weights_and_caches_in_TINYFACE_CACHE_DIR(read_only_site, tmp_path, outside):
    """The bundled weights are found inside the install, and kernels cache where the setting
    says (the tiny model's three kernels: the bundled model's compile adds a minute and nothing
    to what is checked; .ci/run's wheel step runs `tinyface verify` from an install)."""
    work, home = outside
    where = run([sys.executable, "-c", "import tinyface, tinyface.paths as p; "
                 "print(tinyface.__file__); print(p.default_model_path()); print(p.weights_dir() / 'mtcnn')"],
                read_only_site, work, home)
    assert where.returncode == 0, where.stderr
    package = read_only_site / "tinyface"
    assert where.stdout.split() == [str(package / "__init__.py"),
                                    str(package / "weights" / WEIGHT_FILES[0]),
                                    str(package / "weights" / "mtcnn")]
    cache = tmp_path / "kernels"
    model = tiny_model(tmp_path / "tiny.onnx")
    outputs, snapshots = run_twice([read_only_site / "bin" / "tinyface", "embed", "--aligned", "--model", model,
                                    ALIGNED_FACE], read_only_site, work, home, cache, TINYFACE_CACHE_DIR=cache)
    assert '"embedding"' in outputs[0] and outputs[1] == outputs[0]
    assert_second_run_used_the_cache(snapshots)
    assert not (home / ".cache").exists()          # the setting, not Numba's default, was used


def tiny_model(path):
    """An 'embedding' model with three cheap kernels (layout, max pool, average pool):
    enough to see where Numba caches, in seconds."""
    g = GraphBuilder(13)
    y = g.add("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])
    y = g.add("Flatten", [g.add("GlobalAveragePool", [y])], outputs=["embedding"])
    onnx.save(g.build({"x": ["N", 3, 112, 112]}, [(y, ["N", 3])]), path)
    return path


def test_read_only_install_caches_in_numbas_user_wide_cache_by_default(read_only_site, tmp_path, outside):
    work, home = outside
    model = tiny_model(tmp_path / "tiny.onnx")
    outputs, snapshots = run_twice([read_only_site / "bin" / "tinyface", "embed", "--aligned",
                                    "--model", model, ALIGNED_FACE],
                                   read_only_site, work, home, home / ".cache" / "numba")
    assert '"embedding"' in outputs[0] and outputs[1] == outputs[0]
    assert_second_run_used_the_cache(snapshots)


def test_read_only_install_and_home_compile_into_a_private_folder_with_a_warning(read_only_site, tmp_path,
                                                                                 outside):
    work, home = outside
    home.chmod(0o555)
    (tmp_path / "tmp").mkdir()
    model = tiny_model(tmp_path / "tiny.onnx")
    done = run([read_only_site / "bin" / "tinyface", "embed", "--aligned", "--model", model, ALIGNED_FACE],
               read_only_site, work, home, unprivileged=True, TMPDIR=tmp_path / "tmp")
    assert done.returncode == 0, done.stderr
    assert '"embedding"' in done.stdout
    assert "cannot cache compiled kernels" in done.stderr and "TINYFACE_CACHE_DIR" in done.stderr
    assert "Traceback" not in done.stderr
    assert list((tmp_path / "tmp").iterdir()) == []          # the private folder went at exit
