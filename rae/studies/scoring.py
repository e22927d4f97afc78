"""A program judged on human-labelled pairs, through the store, and its agreement with the humans.

Both ``rae optimize`` (scoring the compiled and the uncompiled program on dev and test) and ``rae ablate`` (scoring
each variant) do exactly this, so it is written once. A pair already judged by the same program and model is read
from the store, so scoring a program twice costs nothing the second time.
"""

from dataclasses import dataclass

from rae.annotate.run import AnnotationRun
from rae.annotate.summary import AnnotationSummary
from rae.datasets.records import Rating
from rae.programs.annotator import Annotator
from rae.studies.agreement import AgreementReport, Compared, agreement_report, side_by_side
from rae.workspace import Workspace


@dataclass
class Scored:
    summary: AnnotationSummary  # what judging cost (nothing, for pairs already in the store)
    compared: list[Compared]  # each human label beside the program's
    report: AgreementReport


def judge_and_compare(workspace: Workspace, judgments: list[Rating], annotator: Annotator | None = None, progress: bool = True) -> Scored:
    """Judge the pairs with ``annotator`` (default the workspace's program), then its agreement with the humans."""
    catalog = workspace.labelled.catalog
    pairs = [j.pair for j in judgments]
    run = AnnotationRun(workspace.judging(annotator=annotator), catalog, workspace.workers, progress)
    summary = run.run(pairs)
    compared = side_by_side(judgments, workspace.stored_judgments(pairs, annotator), catalog)
    return Scored(summary, compared, agreement_report(compared))
