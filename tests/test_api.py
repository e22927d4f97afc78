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


def test_judge_writes_a_querys_guidelines_when_none_are_stored(scripted_workspace, tmp_path, monkeypatch):
    """``rae.api.judge`` on a query nothing was stored for: it writes the guidelines (through the store) and judges."""
    import rae.api as rae

    monkeypatch.chdir(tmp_path)
    workspace = rae.open_workspace(program="uncompiled", tracking_uri="none")
    product_id = next(iter(workspace.labelled.catalog))
    answer = rae.judge(workspace, "a query no one asked before", product_id)
    assert answer.status == "ok" and answer.label in {"irrelevant", "acceptable_substitute", "highly_relevant"}
    assert answer.guidelines is not None and scripted_workspace.calls == {"requirements": 1, "guidelines": 1, "judgment": 1}
    again = rae.judge(workspace, "a query no one asked before", product_id)
    assert again.label == answer.label and sum(scripted_workspace.calls.values()) == 3  # read back, not paid again


def test_annotate_is_the_command_lines_code_a_recorded_run_where_the_placement_says(scripted_workspace, tmp_path, monkeypatch):
    import rae.api as rae
    from rae.scaleout import runner
    from rae.scaleout.runner import Placement

    monkeypatch.chdir(tmp_path)
    workspace = rae.open_workspace(program="uncompiled", tracking_uri="none")
    summary = rae.annotate(workspace, split="dev", queries=1, per_query=3)
    assert summary.judged == 3
    [run] = workspace.store.runs("annotate")
    assert run.status == "finished" and run.counts["judged"] == 3
    placed = []
    monkeypatch.setattr(runner, "run_in_processes", lambda *args, **kwargs: placed.append(args[2]) or summary)
    rae.annotate(workspace, split="dev", queries=1, per_query=3, placement=Placement(processes=2))
    assert placed == [2]  # the placement reached the runner, as --processes does
