"""Every ```python and ```bash block of README.md runs as written, in a fresh folder (issue 22 §2).

One test case per block (id: its line number, language and heading). Blocks marked
``*README test: skipped — REASON.*`` are reported as skipped with that reason (a GPU, a data set on disk, the
internet, or commands CI runs itself); ``*README test: slow — …*`` blocks run as ``slow`` tests. The second half
proves the harness can fail: a broken block, a failing command in the middle of a bash block, and a malformed
marker each fail.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .readme_blocks import Block, MarkerError, extract, run_block

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = extract(README.read_text(encoding="utf-8"))


def _param(block: Block) -> object:
    marks = [pytest.mark.slow] if block.slow else []
    return pytest.param(block, id=block.id, marks=marks)


def _check(block: Block, tmp_path: Path) -> None:
    work = tmp_path / "fresh"
    work.mkdir(parents=True)
    start = time.perf_counter()
    proc = run_block(block, work)
    seconds = time.perf_counter() - start
    print(f"README block {block.id}: {seconds:.1f} s")
    assert proc.returncode == 0, (
        f"README.md line {block.line} ({block.lang}, under {block.heading!r}) failed with exit code "
        f"{proc.returncode} in a fresh folder:\n{block.code}\n--- output ---\n{proc.stdout[-6000:]}"
    )


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(f"README line {block.line}: {block.skip}")
    _check(block, tmp_path)


def test_readme_has_blocks_and_most_of_them_run() -> None:
    assert len(BLOCKS) >= 10
    langs = {b.lang for b in BLOCKS}
    assert langs == {"python", "bash"}
    run = [b for b in BLOCKS if not b.skip]
    assert len(run) > len(BLOCKS) // 2, "most README blocks must run in CI, not be skipped"
    for b in BLOCKS:
        if b.skip:
            assert len(b.skip) > 10, f"line {b.line}: a skip needs a reason a reader can act on"


# --- the harness can fail -----------------------------------------------------------------------------------------

_BROKEN = """\
# Demo

Some text.

```python
import cameras
print(undefined_name)  # an edit that broke the example
```

```bash
cameras explain --definitely-not-an-option
```

```bash
false
echo "bash -e stops before this line"
```

```text
not run: only python and bash blocks are
```

*README test: skipped — needs a GPU.*
```python
raise SystemExit("a skipped block is never run")
```

## Fine

```python
import cameras
print(cameras.__file__)
```
"""


def test_extract_finds_python_and_bash_blocks_with_lines_headings_and_markers() -> None:
    blocks = extract(_BROKEN)
    assert [(b.lang, b.line) for b in blocks] == [
        ("python", 5),
        ("bash", 10),
        ("bash", 14),
        ("python", 24),
        ("python", 30),
    ]
    assert blocks[3].skip == "needs a GPU" and blocks[3].slow is None
    assert blocks[4].heading == "Fine" and blocks[4].id == "L30-python-fine"
    assert blocks[0].code == "import cameras\nprint(undefined_name)  # an edit that broke the example\n"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_broken_block_fails(index: int, tmp_path: Path) -> None:
    block = extract(_BROKEN)[index]
    work = tmp_path / "fresh"
    work.mkdir()
    proc = run_block(block, work)
    assert proc.returncode != 0, proc.stdout
    if index == 2:
        assert "bash -e stops" not in proc.stdout
    with pytest.raises(AssertionError, match=f"README.md line {block.line}"):
        _check(block, tmp_path / "again")


def test_a_good_block_runs_in_a_fresh_folder_with_this_checkouts_cameras(tmp_path: Path) -> None:
    block = Block(
        "bash",
        'test -z "$(ls -A)"\ncameras --help > /dev/null\n'
        'python -c "import cameras, os; print(cameras.__file__, os.getcwd())"\n',
        1,
        "",
    )
    work = tmp_path / "fresh"
    work.mkdir()
    proc = run_block(block, work)
    assert proc.returncode == 0, proc.stdout
    module, cwd = proc.stdout.split()
    assert Path(module).resolve() == (README.parent / "src" / "cameras" / "__init__.py").resolve()
    assert Path(cwd).resolve() == work.resolve()


@pytest.mark.parametrize(
    "text",
    [
        "*README test: skiped — typo.*\n```bash\ntrue\n```\n",  # unknown kind
        "*README test: skipped needs a GPU*\n```bash\ntrue\n```\n",  # no dash
        "*README test: skipped — needs a GPU.*\nA paragraph in between.\n```bash\ntrue\n```\n",
        "*README test: skipped — needs a GPU.*\n",  # nothing follows
        "*README test: skipped — needs a GPU.*\n```text\nx\n```\n",  # not a runnable block
        "```bash\ntrue\n",  # unclosed fence
    ],
)
def test_a_bad_marker_or_fence_is_an_error_not_a_silent_skip(text: str) -> None:
    with pytest.raises(MarkerError):
        extract(text)
