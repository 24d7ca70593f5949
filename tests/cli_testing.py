"""Helpers shared by the command-line tests (tests/test_cli*.py)."""
from tinyface.cli.main import main


def run(capsys, *argv):
    """main(argv) -> (exit code, stdout, stderr); never a traceback, never an internal error."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    return code, out, err


def assert_one_line_error(code, out, err, prefix="tinyface:"):
    """Exit 2, nothing on stdout, one line on stderr starting with ``prefix``."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix)
    assert out == ""
