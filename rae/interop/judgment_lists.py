"""``rae judgments import`` and ``rae judgments export``: judgment lists between rae's store and the other tools.

Import reads the file as its tool wrote it, decides its scale once for the whole file (the one asked for, the one
the file declares, or the format's; a scale that cannot read every rating, or would read two of the file's grades as
one class, is refused with what it would do), names its raters, and stores each label as its rater's: a human
rater's or, with ``--kind llm``, another LLM judge's. A file that holds no rating is an error unless the user says
an empty file is fine.

Export writes what the store holds for a split of the labelled set, an evaluation run's pools, a query set, or every
pair a stored rater labelled (what came in from another tool goes back out): the judge's labels, the human labels, or both as
separate raters; one rating a pair where the format holds one.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from rae.datasets.catalog import FIELD_NAMES, product_from_fields
from rae.datasets.judgment_entries import Entry, Format, JudgmentFile
from rae.datasets.judgment_reading import read_judgment_file
from rae.datasets.judgment_writing import write_judgments
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.load import load_labelled_set
from rae.datasets.rating_scales import NAMED_LABELS, RatingError, RatingScale, check_ratings, declared_scale, rating_scale
from rae.datasets.readers import DataFileError
from rae.datasets.records import Pair, Rating
from rae.datasets.searchlog import normalize_query, query_id_for
from rae.evaluate.stored_run import load_evaluation
from rae.interop.quepid_try import QUEPID_ENGINES, NoQuepidSearch, quepid_try
from rae.interop.raters import (
    ONE_RATING_FORMATS,
    RaterError,
    imported_rater_names,
    judge_emails,
    one_rating_a_pair,
    without_the_sets_own,
)
from rae.store.human_labels import latest_ratings, save_ratings
from rae.store.products import save_products
from rae.store.records import judged_pairs_of_queries
from rae.workspace import Workspace

Which = Literal["llm", "human", "both"]
DEFAULT_SCALES = {
    "trec": "0-2", "quepid-csv": "0-3", "quepid-judgements": "0-3", "quepid-book": "0-3", "quepid-case": "0-3", "quepid-snapshot": "0-3",
    "quepid-detailed": "0-3", "quepid-ltr": "0-3", "rre": "0-3", "srw": "unit", "srw-csv": "unit",
}
NAMED_FORMATS = ("csv", "jsonl")  # rae's own: labels by name, no scale


@dataclass
class Moved:
    """What an import or export moved, on which scale, and anything the user should know about it."""

    verb: str
    path: Path
    fmt: str
    labels: int
    raters: list[str]
    pairs: int
    scale: str = ""
    notices: list[str] = field(default_factory=list)

    def line(self) -> str:
        raters = ", ".join(self.raters[:5]) + (f" and {len(self.raters) - 5} more" if len(self.raters) > 5 else "") or "no rater"
        direction = "from" if self.verb == "imported" else "to"
        on = f", scale {self.scale}" if self.scale else ""
        return "\n".join([f"{self.verb} {self.labels} labels of {self.pairs} pairs ({raters}) {direction} {self.path} ({self.fmt}{on})", *self.notices])


def import_judgments(
    workspace: Workspace, path: Path, fmt: Format | None, rater: str | None, scale: str | None, kind: str = "human", allow_empty: bool = False
) -> Moved:
    """Store a file's labels as its raters'; the format is the one asked for, else the one its content shows."""
    labelled = workspace.labelled
    file = read_judgment_file(path, fmt)
    fmt = file.fmt
    if not file.entries and not allow_empty:
        raise DataFileError(path, None, f"no ratings in it as {fmt} (--allow-empty if an empty list is expected)")
    scale_used, how = _import_scale(file, fmt, scale, workspace.settings.rating_scales)
    try:
        names = imported_rater_names([e.rater for e in file.entries], rater, _bare_name(path))
        query_ids, query_texts = query_ids_of(labelled), _query_texts(labelled)
        labels = [_rating(file, e, scale_used, names, query_ids, query_texts) for e in file.entries]
        labels, repeated = once_a_rater(file, labels)
        own = {(j.query_id, j.product_id): j.label for j in labelled.judgments}
        labels, notices = without_the_sets_own(labels, own, labelled.name) if kind == "human" else (labels, [])
    except RaterError as exc:
        raise DataFileError(path, None, str(exc)) from None
    save_ratings(workspace.store, labels, f"import:{fmt}:{path.name}", kind)
    told = [f"format {fmt}: from the file's content (--format to insist on another)"] if file.detected else []
    notices = told + ([f"scale {scale_used.name}: {how}"] if fmt not in NAMED_FORMATS else []) + repeated + notices
    notices += keep_products(workspace, file, f"import:{fmt}:{path.name}")
    return Moved("imported", path, fmt, len(labels), sorted({r.rater for r in labels}), len({(r.query_id, r.product_id) for r in labels}),
                 notices=notices)


def keep_products(workspace: Workspace, file: JudgmentFile, source: str) -> list[str]:
    """Store the products' text the file shows (a title at least), and say what was kept and what the catalog has."""
    shown = [p for d, f in sorted(file.products.items()) if (p := product_from_fields(d, f)) is not None]
    if not shown:
        return []
    catalog = load_labelled_set(workspace.settings.data, workspace.settings.label_mapping).catalog  # the files', not what earlier imports added
    new = [p for p in shown if p.product_id not in catalog]
    save_products(workspace.store, shown, source)
    fields = [f for f in FIELD_NAMES if any(getattr(p, f) for p in shown)]
    known = len(shown) - len(new)
    return [f"kept the text ({', '.join(fields)}) of {len(shown)} products the file shows: {len(new)} the catalog does not have, whose pairs "
            f"rae can now judge" + (f"; {known} the catalog has, whose own text rae keeps using" if known else "")]


def export_judgments(
    workspace: Workspace, path: Path, fmt: Format, which: Which, pairs: list[Pair], scale: str | None, name: str,
    rater: str | None = None, consensus: str | None = None, rater_emails: list[str] | None = None, engine: str | None = None,
) -> Moved:
    labels = (llm_labels(workspace, pairs) if which in ("llm", "both") else []) + (human_labels(workspace, pairs) if which in ("human", "both") else [])
    if rater is not None:
        raters = sorted({r.rater for r in labels})
        labels = [r for r in labels if r.rater == rater]
        if not labels:
            raise RaterError(f"no labels by {rater!r} among these pairs (raters: {', '.join(raters) or 'none'})")
    if fmt in ONE_RATING_FORMATS:
        labels = one_rating_a_pair(labels, fmt, consensus)
    emails, notices = judge_emails(sorted({r.rater for r in labels}), rater_emails or [], fmt) if fmt in ("quepid-book", "quepid-case") else ({}, [])
    scale_used = NAMED_LABELS if fmt in NAMED_FORMATS else rating_scale(scale or DEFAULT_SCALES[fmt], workspace.settings.rating_scales)
    case_try, told = case_search(workspace, engine) if fmt == "quepid-case" else (None, [])
    write_judgments(path, fmt, labels, scale_used, name, emails, case_try)
    notices += told
    return Moved("exported", path, fmt, len(labels), sorted({r.rater for r in labels}), len({(r.query_id, r.product_id) for r in labels}),
                 "" if fmt in NAMED_FORMATS else scale_used.name, notices)


def case_search(workspace: Workspace, engine: str | None) -> tuple[dict, list[str]]:
    """The try of a Quepid case: the search of the engine named, which must be one Quepid can query."""
    specs = workspace.settings.engine_specs()
    clusters = [name for name, spec in specs.items() if spec.kind in QUEPID_ENGINES]
    if engine is None or engine not in specs:
        known = ", ".join(clusters) or "none in this project's rae.toml"
        raise NoQuepidSearch(f"quepid-case: Quepid imports a case with the search it runs: --engine NAME, one of your opensearch, "
                             f"elasticsearch or solr engines ({known})" + (f"; there is no engine {engine!r}" if engine else ""))
    spec = specs[engine]
    told = [f"quepid-case: the try queries {spec.url} as engine {engine} does; its credentials are not written (Quepid asks for them on its "
            "search endpoint's page)"] if getattr(spec, "auth", None) and any(vars(spec.auth).values()) else []
    return quepid_try(engine, spec), told


def pairs_to_export(
    workspace: Workspace, split: str | None, queries: int | None, per_query: int | None, run_id: str | None, query_set: list | None,
    rated: bool = False,
) -> list[Pair]:
    """The pairs of an evaluation run's pools, of a query set's judged queries, of every pair a stored rater labelled
    (imported lists and reviews), or of a split of the labelled set (all of it by default)."""
    if run_id is not None:
        stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None if run_id == "latest" else run_id)
        return stored.pool_pairs()
    if query_set is not None:
        rows = judged_pairs_of_queries(workspace.store, [q.text for q in query_set])
        return sorted({Pair(*row) for row in rows}, key=lambda p: (p.query_id, p.product_id))
    if rated:
        ratings = [r for kind in ("human", "llm") for r in latest_ratings(workspace.store, kind)]
        return sorted({Pair(r.query_id, r.query, r.product_id) for r in ratings}, key=lambda p: (p.query_id, p.product_id))
    return workspace.labelled.pairs(split or "all", queries, per_query)


def llm_labels(workspace: Workspace, pairs: list[Pair]) -> list[Rating]:
    """The judge's stored labels of the pairs (this program and model), its reasoning as the explanation."""
    rater = f"{workspace.settings.model.name}:{workspace.describe()['program']}"
    outcomes = workspace.stored_judgments([p for p in pairs if p.product_id in workspace.labelled.catalog])
    return [
        Rating(pair.query_id, pair.query, pair.product_id, outcome.value.label, rater, note=outcome.value.reasoning or "")
        for pair, outcome in outcomes.items()
        if outcome.ok
    ]


def human_labels(workspace: Workspace, pairs: list[Pair]) -> list[Rating]:
    """Every human label of the pairs: the labelled set's (its name as the rater) and every human rater's in the store."""
    wanted = {(p.query_id, p.product_id) for p in pairs}
    labelled = workspace.labelled
    labels = [replace(j, rater=labelled.name) for j in labelled.judgments if (j.query_id, j.product_id) in wanted]
    return labels + [r for r in latest_ratings(workspace.store) if (r.query_id, r.product_id) in wanted]


def once_a_rater(file: JudgmentFile, labels: list[Rating]) -> tuple[list[Rating], list[str]]:
    """Each rater's label of a pair once: a rating the file repeats (SRW's query blocks, repeated) is stored once with
    a notice; two different ratings of one pair by one rater are refused, both lines named."""
    first: dict[tuple[str, str, str], int] = {}
    kept: list[Rating] = []
    repeats = 0
    for index, label in enumerate(labels):
        key = (label.rater, label.query_id, label.product_id)
        if key not in first:
            first[key] = index
            kept.append(label)
            continue
        earlier = labels[first[key]]
        if earlier.original_label != label.original_label and earlier.label != label.label:
            raise file.error(file.entries[index], f"{label.rater} rates ({label.query!r}, {label.product_id}) {label.original_label} here and "
                                                  f"{earlier.original_label} at line {file.line_of(file.entries[first[key]])}: which one holds?")
        repeats += 1
    notices = [f"{repeats} ratings repeat a rater's rating of the same pair: stored once"] if repeats else []
    return kept, notices


def _import_scale(file: JudgmentFile, fmt: Format, asked: str | None, custom) -> tuple[RatingScale, str]:
    """The scale that reads the whole file, and how it was chosen; refused (with the way out) if it cannot."""
    if fmt in NAMED_FORMATS:
        if asked:
            raise DataFileError(file.path, None, f"--scale does not apply to {fmt}: its labels are written by name")
        scale, how = NAMED_LABELS, "labels by name"
    else:
        try:
            if asked:
                scale, how = rating_scale(asked, custom), "asked for"
            elif isinstance(file.declared_scale, list):
                scale, how = declared_scale(file.declared_scale), f"the file's scale {file.declared_scale}"
            elif isinstance(file.declared_scale, str):
                scale, how = rating_scale(file.declared_scale), f"the file's scorer {file.declared_scale}"
            else:
                scale, how = rating_scale(DEFAULT_SCALES[fmt]), f"{fmt}'s default (--scale to change)"
        except RatingError as exc:
            raise DataFileError(file.path, None, str(exc)) from None
    try:
        check_ratings(scale, [e.rating for e in file.entries])
    except RatingError as exc:
        first = next((e for e in file.entries if not scale.readable(e.rating)), None)
        raise (file.error(first, str(exc)) if first else DataFileError(file.path, None, str(exc))) from None
    return scale, how


def _rating(file: JudgmentFile, entry: Entry, scale: RatingScale, names, query_ids, query_texts) -> Rating:
    if entry.query_id and not entry.query:  # TREC names queries by id
        query = query_texts(entry.query_id)
        if query is None:
            raise file.error(entry, f"query id {entry.query_id!r} is not one rae knows (TREC names queries by id: use rae's ids)")
        query_id = entry.query_id
    else:
        query, query_id = entry.query, entry.query_id or query_ids(entry.query)
    return Rating(query_id, query, entry.product_id, scale.label(entry.rating), names[entry.rater], original_label=entry.rating, note=entry.note)


def _bare_name(path: Path) -> str:
    """The file's name without its format's suffixes (``book_7.json.zip`` is ``book_7``), the rater of unnamed labels."""
    name = path.name
    while Path(name).suffix.lower() in (".zip", ".gz", ".json", ".jsonl", ".ndjson", ".csv", ".txt", ".tsv"):
        name = Path(name).stem
    return name or path.name


def query_ids_of(labelled: LabelledSet):
    """Query text -> id: the labelled set's id for a query it has (by normalised text), else rae's id for the text."""
    known = {normalize_query(j.query): j.query_id for j in labelled.judgments}
    return lambda text: known.get(normalize_query(text)) or query_id_for(text)


def _query_texts(labelled: LabelledSet):
    known = {j.query_id: j.query for j in labelled.judgments}
    return known.get
