"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_a_readme_python_block_runs(number, capsys):
    exec(compile(BLOCKS[number], f"README.md python block {number}", "exec"), {})
    assert capsys.readouterr().out.strip()
