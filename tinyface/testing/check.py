"""``check_against_reference``: property-test an op implementation against tinyface.reference."""
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from tinyface import reference
from tinyface.testing.nodes import nodes


def reduction_length(case):
    """How many products each output value of ``case`` sums (1 for ops that sum none):
    float32 rounding error grows about like its square root."""
    x = case.inputs
    if case.op_type == "Conv":
        return int(np.prod(x[1].shape[1:]))                    # C/group x KH x KW
    if case.op_type == "Gemm":
        return x[0].shape[0 if case.attrs.get("transA") else 1]
    if case.op_type == "MatMul":
        return x[0].shape[-1]
    if case.op_type == "GlobalAveragePool":
        return int(np.prod(x[0].shape[2:]))
    return 1


def assert_matches(got, want, case, rtol=1e-4, atol=1e-4):
    """``got`` has ``want``'s shape and agrees with it: exactly when ``want`` is not
    floating point, else within ``atol * sqrt(reduction_length) + rtol * |want|``."""
    got = np.asarray(got)
    assert got.shape == want.shape, f"{case}: shape {got.shape}, the reference's is {want.shape}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=str(case))
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * np.sqrt(reduction_length(case)),
                                   err_msg=str(case))


def check_against_reference(op_type, implementation, cases=None, *, max_examples=100, rtol=1e-4, atol=1e-4):
    """Property-test ``implementation`` of ONNX op ``op_type`` against tinyface's reference.

    ``implementation(*inputs, **attrs)`` is called as the reference is: the
    node's inputs (float32 arrays in ONNX's layout, None for an omitted
    optional one) positionally, its attributes as keyword arguments with
    their ONNX names.  ``cases`` is a hypothesis strategy of
    ``tinyface.testing.Case`` (default: ``nodes(op_type)``, what tinyface
    itself runs; narrow it, e.g. ``conv_nodes(depthwise=True)``, to what the
    implementation supports).  Each result must have the reference's shape
    and agree with its float64 value to ``atol * sqrt(K) + rtol * |want|``,
    K the number of products per output value (``reduction_length``);
    integer results must be equal.

    Runs ``max_examples`` cases and returns how many ran; on a mismatch,
    hypothesis shrinks it to a small failing case and the AssertionError names it.
    """
    cases = nodes(op_type) if cases is None else cases
    ran = []

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
    @given(case=cases)
    def run(case):
        if case.op_type != op_type:
            raise ValueError(f"check_against_reference({op_type!r}) was given cases of {case.op_type}")
        want = reference.run_node(case.op_type, case.inputs, case.attrs, case.opset)
        assert_matches(implementation(*case.inputs, **case.attrs), want, case, rtol, atol)
        ran.append(case)

    run()
    return len(ran)
