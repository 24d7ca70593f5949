"""Parameter and MAdd counts of the builders against the papers and a hand count."""
import pytest

from functools import lru_cache

from tinyface.models import ARCHITECTURES, build, describe_architectures
from tinyface.models import counts as _counts
from tinyface.models.counting import count


def counts(arch, input_size=(112, 112), activation="prelu"):
    """tinyface.models.counts, computed once per test session."""
    return _cached_counts(arch, tuple(input_size), activation)


@lru_cache(maxsize=None)
def _cached_counts(arch, input_size, activation):
    return _counts(arch, input_size, activation)

MFN = [(2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)]
MOBIFACE = [(2, 64, 3, 2), (2, 128, 4, 2), (2, 256, 7, 2)]


def hand_count(arch, h=112, w=112, prelu=True):
    """(params, MAdds) written out layer by layer, independently of the ONNX graph.

    params = weights + one folded BN shift per conv channel + PReLU slopes + dense biases.
    """
    params = madds = 0

    def conv(cin, cout, k, stride=1, depthwise=False, act=True, kernel=None):
        nonlocal params, madds, h, w
        kh, kw = kernel or (k, k)
        pad = 0 if kernel else (kh - 1) // 2
        h, w = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        weights = cout * kh * kw * (1 if depthwise else cin)
        params += weights + cout + (cout if act and prelu else 0)
        madds += weights * h * w

    def dense(fin, fout):
        nonlocal params, madds
        params += fin * fout + fout
        madds += fin * fout

    conv(3, 64, 3, 2)
    conv(64, 64, 3, depthwise=True)
    c = 64
    for t, cout, n, s in (MFN if arch.startswith("mobilefacenet") else MOBIFACE):
        for i in range(n):
            conv(c, t * c, 1)
            conv(t * c, t * c, 3, s if i == 0 else 1, depthwise=True)
            conv(t * c, cout, 1, act=False)
            c = cout
    if arch != "mobilefacenet-s":
        conv(c, 512, 1)
        c = 512
    if arch.startswith("mobilefacenet"):
        conv(c, c, 0, depthwise=True, act=False, kernel=(h, w))
        if arch == "mobilefacenet":
            conv(c, 128, 1, act=False)
    else:
        dense(c * h * w, 512)
        if arch == "flipped-mobiface":
            dense(512, 512)
            dense(512, 512)
    return params, madds


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("activation", ["prelu", "relu"])
def test_counts_from_the_onnx_graph_equal_the_hand_count(arch, activation):
    c = counts(arch, (112, 112), activation)
    assert (c.params, c.madds) == hand_count(arch, prelu=activation == "prelu")


@pytest.mark.parametrize("size", [(112, 96), (96, 96), (64, 48)])
def test_counts_at_other_input_sizes_equal_the_hand_count(size):
    c = counts("mobilefacenet", size)
    assert (c.params, c.madds) == hand_count("mobilefacenet", *size)


@pytest.mark.parametrize("arch, params", [("mobilefacenet", 0.99e6), ("mobilefacenet-m", 0.92e6),
                                          ("mobilefacenet-s", 0.84e6)])
@pytest.mark.parametrize("activation", ["prelu", "relu"])
def test_mobilefacenet_params_match_the_paper_within_1_percent(arch, params, activation):
    assert counts(arch, (112, 112), activation).params == pytest.approx(params, rel=0.01)


def test_mobilefacenet_figures():
    c = counts("mobilefacenet")
    assert c.madds == 220_965_376 == pytest.approx(221e6, rel=0.01)
    assert (c.weights, c.bn_folded, c.prelu, c.biases) == (976_000, 9_792, 7_552, 0)
    assert c.params == 993_344
    assert c.trainable == 1_003_136           # PyTorch's count: 1.3 % over the paper's 0.99M
    assert counts("mobilefacenet-m").params == 927_680
    assert counts("mobilefacenet-s").params == 841_920


@pytest.mark.parametrize("size", [(112, 96), (96, 96)])
def test_smaller_inputs_scale_madds_with_the_pixel_count(size):
    h, w = size
    assert counts("mobilefacenet", size).madds == pytest.approx(221e6 * h * w / 112 ** 2, rel=0.01)


def test_mobiface_true_figures_and_the_fc_that_dominates_them():
    c = counts("mobiface")
    fc = 7 * 7 * 512 * 512
    assert fc == 12_845_056
    assert (c.params, c.madds) == (14_984_128, 224_926_464)
    assert c.params - fc - 512 == 2_138_560         # everything but the FC
    assert 4 * c.params / 1e6 == pytest.approx(59.9, abs=0.1)   # MB in float32, not 9.3
    f = counts("flipped-mobiface")
    assert f.params - c.params == 2 * (512 * 512 + 512)
    assert f.madds - c.madds == 2 * 512 * 512


def test_count_of_a_seeded_model_equals_the_zero_weight_count():
    assert count(build("mobilefacenet-s", (48, 48))) == _counts("mobilefacenet-s", (48, 48))


def test_describe_architectures_lists_every_arch_with_its_figures():
    rows = describe_architectures()
    assert {r.name for r in rows} == set(ARCHITECTURES)
    first = rows[0]
    assert (first.name, first.input_size, first.embedding_size) == ("mobilefacenet", (112, 112), 128)
    assert (first.params, first.madds) == (993_344, 220_965_376)
    assert [r.input_size for r in rows if r.name == "mobilefacenet"] == [(112, 112), (112, 96), (96, 96)]
