"""The cache database's tables: one per stage of the program, plus the runs that filled them.

Every stage row is keyed by a fingerprint of (stage, program hash, model identity, input content); see
``rae.store.keys``. A row also keeps what the call cost and what the model literally wrote, so that a failure can be
read and a bill can be checked without calling the model again.
"""

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class LMCall:
    """Columns every stored LM output has: its key, its provenance, what it cost, and what the model wrote."""

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    program_hash: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(Text)
    input_hash: Mapped[str] = mapped_column(String(64))
    # "ok"; "failed": the output could not be parsed; "degenerate": it parsed but says nothing (a placeholder, the
    # schema, an echo of the query; see rae.programs.validators), and ``error`` says why
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # What the output checks found: why the first answer was degenerate, how many attempts were made, why the kept one
    # still is (see rae.annotate.refine); None where no check ran
    validation: Mapped[dict | None] = mapped_column(JSON, default=None)
    raw_output: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    latency_s: Mapped[float | None] = mapped_column(Float, default=None)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LMCallRow(Base):
    """One answer of a model, keyed on exactly what the model was sent (``rae.store.keys.request_key``): the model's
    identity, the rendered messages, the generation settings and the response format. Any change to a prompt, whatever
    made it (a program's instructions or demos, an adapter, DSPy's formatting, the product text), is another key, so
    an answer is never served for a prompt it was not given; and the same prompt, from any command, engine or node, is
    paid once. ``request`` keeps what was sent (images by their hash), so a later rae can key it again."""

    __tablename__ = "lm_calls"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(32), default="")  # which step asked: requirements, guidelines, judgment, ...
    request: Mapped[dict | None] = mapped_column(JSON, default=None)
    text: Mapped[str] = mapped_column(Text)  # what the model wrote (secrets redacted)
    finish_reason: Mapped[str] = mapped_column(String(16), default="stop")
    input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    latency_s: Mapped[float | None] = mapped_column(Float, default=None)
    retries: Mapped[int] = mapped_column(Integer, default=0)  # transient errors retried before this answer came
    probabilities: Mapped[dict | None] = mapped_column(JSON, default=None)  # of each option of a choice (the embedded model)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MetaRow(Base):
    """The store's own facts, by name: ``schema_version`` (2 once the answers of an older rae were keyed again)."""

    __tablename__ = "store_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RequirementsRow(LMCall, Base):
    __tablename__ = "requirements"

    query: Mapped[str] = mapped_column(Text)
    requirements: Mapped[list | None] = mapped_column(JSON, default=None)


class GuidelinesRow(LMCall, Base):
    __tablename__ = "guidelines"

    query: Mapped[str] = mapped_column(Text)
    guidelines: Mapped[dict | None] = mapped_column(JSON, default=None)


class DescriptionRow(LMCall, Base):
    __tablename__ = "descriptions"

    image_hash: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)


class JudgmentRow(LMCall, Base):
    __tablename__ = "judgments"
    __table_args__ = (Index("ix_judgments_pair", "query_id", "product_id"),)

    query_id: Mapped[str] = mapped_column(String(128))
    query: Mapped[str] = mapped_column(Text)
    product_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(32), default=None)
    reasoning: Mapped[str | None] = mapped_column(Text, default=None)
    visual: Mapped[str] = mapped_column(String(32), default="none")  # what the judge saw of the image: none, description, image
    guidelines_source: Mapped[str] = mapped_column(String(16), default="query")  # the guidelines it read: query or generic
    # comma-separated: instructions to the judge found in the listing (see rae.programs.hostile_text), and
    # "no_reasoning" when the judge's reasoning was degenerate and is not stored
    flags: Mapped[str] = mapped_column(String(255), default="")
    confidence: Mapped[float | None] = mapped_column(Float, default=None)  # the probability of the label given
    probabilities: Mapped[dict | None] = mapped_column(JSON, default=None)  # of each label
    confidence_method: Mapped[str] = mapped_column(String(16), default="none")  # probabilities, samples or none


class ImageRow(Base):
    """What fetching a product image gave: the content hash of the bytes kept on disk, or why there is none.

    A missing image (offline, 404, not an image, too large) is a fact recorded for its source, so a run does not try
    again on every product, and the judgment records that it was made without the image.
    """

    __tablename__ = "images"

    source: Mapped[str] = mapped_column(String(2048), primary_key=True)  # a URL or a local path
    status: Mapped[str] = mapped_column(String(16))  # "ok" or "missing"
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    media_type: Mapped[str | None] = mapped_column(String(64), default=None)
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClaimRow(Base):
    """A call in progress somewhere: the claimant (an executor, in some process) that is paying for this key. Another
    claimant that needs the same key waits for its result instead of paying again. A claim ends when its result is
    stored, when its lease runs out, or at once when its owner's process is seen to be dead (a killed run)."""

    __tablename__ = "claims"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BudgetRow(Base):
    """A spending limit and its ledger, shared by every process and node of one run (``--budget``). Before a call is
    sent, the most it can cost is reserved here, in the transaction that claims its key, and only if spent plus reserved
    stays within the limit; when the answer is stored the reservation is settled with what the call cost. A
    reservation of a process that died is never settled: it stays counted, so the limit holds whatever happens."""

    __tablename__ = "budgets"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit_usd: Mapped[float] = mapped_column(Float)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # calls settled
    refused: Mapped[int] = mapped_column(Integer, default=0)  # calls the limit could not cover, not sent
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ErrorCauseRow(LMCall, Base):
    """Why the judge disagreed with a human on one pair, as the error analyst named it."""

    __tablename__ = "error_causes"

    query_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[str] = mapped_column(String(128))
    human_label: Mapped[str] = mapped_column(String(32))
    judge_label: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str | None] = mapped_column(String(32), default=None)
    explanation: Mapped[str | None] = mapped_column(Text, default=None)


class ReviewItemRow(Base):
    """A pair put before human reviewers, and why (low confidence, a hard disagreement, a worst query)."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_queue", "queue", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    query_id: Mapped[str] = mapped_column(String(128))
    query: Mapped[str] = mapped_column(Text)
    product_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32), default="")  # confidence, disagreement or worst (see rae.review.queue)
    reason: Mapped[str] = mapped_column(Text)
    judgment: Mapped[str | None] = mapped_column(String(64), default=None)  # fingerprint of the LLM judgment shown
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HumanLabelRow(Base):
    """A rater's label for a pair: a reviewer's, saved the moment it is given on the review page, or one imported from
    a judgment file. Every rater's label is kept, and a rater who changes their mind adds a row: the latest counts,
    the history stays."""

    __tablename__ = "human_labels"
    __table_args__ = (Index("ix_human_labels_pair", "query_id", "product_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(String(128))
    query: Mapped[str] = mapped_column(Text)
    product_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    item_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Where the label came from: "review" (the review page), or "import:<format>:<file>" (rae judgments import)
    source: Mapped[str] = mapped_column(String(255), default="review")
    # "human", or "llm" for another LLM judge's labels imported as a rater (never counted as human labels)
    rater_kind: Mapped[str] = mapped_column(String(16), default="human")


class ImportedProductRow(Base):
    """A product's text as an imported judgment file showed it (a Quepid book's ``document_fields``, a detailed CSV's
    columns): what lets rae judge pairs of products its catalog does not have. The latest import of a product holds."""

    __tablename__ = "imported_products"

    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    fields: Mapped[dict] = mapped_column(JSON)  # rae's product fields (``rae.datasets.records.Product``)
    source: Mapped[str] = mapped_column(String(255))  # "import:<format>:<file>"
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class RunRow(Base):
    """One command that wrote to the store: what it was asked, with what settings, and what it did."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    command: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, finished, aborted
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class EvaluationSampleRow(Base):
    """A query drawn for human labelling by ``rae review queue --for-evaluation``, with the probability it was drawn
    with (its inclusion probability; in an older rae's active draw, which drew with replacement, ``draws`` times, its
    probability per draw: ``without_replacement`` false) and its stratum's size: the corrected estimates weight it by
    them, so every design stays unbiased."""

    __tablename__ = "evaluation_samples"

    population: Mapped[str] = mapped_column(String(64), primary_key=True)  # fingerprint of the evaluated query ids
    query_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))  # the evaluation whose queries were drawn from
    design: Mapped[str] = mapped_column(String(32))  # uniform, stratified or active (confidence: an older rae's stratified)
    stratum: Mapped[str] = mapped_column(String(32), default="all")
    inclusion_probability: Mapped[float] = mapped_column(Float)
    draws: Mapped[int] = mapped_column(Integer, default=1)
    stratum_size: Mapped[int] = mapped_column(Integer, default=0)  # 0: written by an older rae (size = drawn / probability)
    without_replacement: Mapped[bool] = mapped_column(Boolean, default=False)  # false: written by an older rae (its active draws had replacement)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchRow(Base):
    """A batch of LM requests sent to a batch API (or written to a file for a team's own GPUs), and what came of it.

    The requests are keyed by the store keys of the steps that make them (``custom_ids``), so a killed run finds the
    batch again and polls it instead of submitting twice, and its results are stored under the keys an online call
    would use. ``work`` is the pairs the command asked for, so ``rae batches import`` can store a file's results. A
    batch sent under a budget holds each request's reservation (``budget_id``, ``reserved``: key -> amount) until its
    answers are stored, so a resumed batch settles what a killed run reserved."""

    __tablename__ = "batches"

    batch_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # "api" (the Batch API) or "file"
    model: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))  # the API's: validating, in_progress, finalizing, completed, failed, expired, cancelled; or written
    requests: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    custom_ids: Mapped[list] = mapped_column(JSON, default=list)  # the store keys of its requests
    stages: Mapped[dict] = mapped_column(JSON, default=dict)  # which step asked for each request, by key
    work: Mapped[list] = mapped_column(JSON, default=list)  # [query_id, query, product_id] of the pairs asked for
    input_file_id: Mapped[str | None] = mapped_column(String(255), default=None)
    output_file_id: Mapped[str | None] = mapped_column(String(255), default=None)
    error_file_id: Mapped[str | None] = mapped_column(String(255), default=None)
    stored: Mapped[bool] = mapped_column(Boolean, default=False)  # its results are in the store
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    budget_id: Mapped[str | None] = mapped_column(String(64), default=None)
    reserved: Mapped[dict | None] = mapped_column(JSON, default=None)  # key -> the amount reserved for it


# The tables in which an older rae (store schema 1) kept each step's answer, keyed on (stage, program hash, model,
# input); rae now writes its records there, and keeps answers in ``lm_calls``.
LEGACY_TABLES = (RequirementsRow, GuidelinesRow, DescriptionRow, JudgmentRow, ErrorCauseRow)
