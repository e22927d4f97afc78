"""The README's Python example runs as written (with the scripted model in place of the embedded one)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_python_example_runs(scripted_workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\ntracking_uri = "none"\n')
    example = re.search(r"## From Python.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    frame = namespace["frame"]
    assert len(frame) == 8 and set(frame.judge_status) == {"ok"}
    assert (tmp_path / "judgments.parquet").stat().st_size > 0
    assert namespace["answer"].label in {"irrelevant", "acceptable_substitute", "highly_relevant"}
    assert "8 pairs: 8 judged" in capsys.readouterr().out
