"""
The pinned requirement files stay in step with each other.

``make`` installs ``requirements/dev.txt`` into ``.venv``, and dev.txt is compiled from quality.txt, which is compiled
from test.txt (``-r`` in each ``.in``). A package added to test.in and compiled into test.txt alone would be missing
from the ``.venv`` that ``make test`` and CI build, so the suite would fail to import it on a fresh machine while
passing on a developer's older ``.venv``.
"""
import re
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", re.MULTILINE)


def pins(name):
    """{normalised package name: version} of requirements/<name>.txt."""
    text = (REQUIREMENTS / f"{name}.txt").read_text(encoding="utf-8")
    return {re.sub(r"[-_.]+", "-", package).lower(): version for package, version in PIN.findall(text)}


@pytest.mark.parametrize(("included", "including"), [("test", "quality"), ("quality", "dev"), ("base", "test")])
def test_every_pin_of_a_file_is_in_the_file_compiled_from_it(included, including):
    inner, outer = pins(included), pins(including)
    assert inner, f"no pins read from {included}.txt"
    missing = {package: version for package, version in inner.items() if outer.get(package) != version}
    assert not missing, f"{including}.txt lacks or pins differently what {included}.txt pins: {missing}"
