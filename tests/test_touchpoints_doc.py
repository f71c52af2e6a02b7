"""
docs/openedx-touchpoints.rst names, for every platform behaviour the plugin relies on, the test that pins it: each
test it names exists, so the page cannot point at tests that were renamed or removed.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "openedx-touchpoints.rst").read_text(encoding="utf-8")


def test_every_test_the_touchpoints_page_names_exists():
    named, current_file = [], None
    # "tests/test_x.py::test_y", then "``::test_z``" meaning the same file as the reference before it.
    for file_name, test_name, same_file_test in re.findall(r"(tests/test_\w+\.py)(?:::(\w+))?|``::(\w+)``", DOC):
        if file_name:
            current_file = file_name
            assert (ROOT / file_name).exists(), file_name
        test = test_name or same_file_test
        if test:
            named.append((current_file, test))
    assert len(named) >= 20
    for file_name, test in named:
        source = (ROOT / file_name).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.MULTILINE), f"{file_name}::{test} does not exist"


def test_every_row_names_a_test():
    rows = DOC.split("   * - ")[1:]
    touch_points = [row for row in rows if not row.startswith("Real file")]
    assert touch_points and all("tests/" in row or "``::" in row for row in touch_points)
