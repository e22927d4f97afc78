"""Batch mode (``--batch``, ``--batch-file``): the same calls as an online run, sent as batches at half the price.

A round: the annotation runs with an engine that captures each request its steps would send (``rae.lm.batched``);
the requests go out as one batch (the OpenAI Batch API, through the ``openai`` SDK, at the model's ``api_base`` or
OpenAI's), rae polls it, downloads its results, and runs the annotation again with an engine that answers each step
from them, so every answer is parsed, checked and stored exactly as an online one, under the same key. The first
round makes the queries' requirements, the second their guidelines (they need the requirements), the third the
judgments; a round that finds nothing to ask ends the run. A degenerate answer is stored as such (a batch has no
second attempt; ``--retry-failed`` online refines it); a request the batch failed or let expire is asked again by
the next run.

Every batch is recorded in the store with the keys of its requests, so a killed ``rae annotate --batch`` finds it and
polls it instead of submitting twice. With ``--batch-file``, the round's requests are written to a JSON Lines file
instead (vLLM's ``run_batch`` reads the same lines), and ``rae batches import`` stores the results file.
"""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dspy
import openai
from sqlalchemy import select
from tqdm import tqdm

from rae.annotate.run import AnnotationRun
from rae.annotate.spending import SpendingLimit
from rae.annotate.summary import AnnotationSummary
from rae.config import ConfigError, ModelPrice
from rae.datasets.records import Pair
from rae.lm.batched import CaptureEngine, ReplayEngine
from rae.lm.factory import ModelHandle
from rae.lm.pricing import resolve_price
from rae.store.schema import BatchRow
from rae.workspace import Workspace

TERMINAL = ("completed", "failed", "expired", "cancelled")
ROUNDS = 3  # requirements, guidelines, judgments
ENDPOINT = "/v1/chat/completions"


@dataclass
class Results:
    """What a batch gave back: completions by key, and the keys it failed."""

    completions: dict[str, dict[str, Any]]
    failed: int


def run_in_batches(
    workspace: Workspace, pairs: list[Pair], run_id: str | None, to_file: Path | None = None, progress: bool = True,
    retry_failed: bool = False, limit: SpendingLimit | None = None,
) -> AnnotationSummary:
    """Rounds of batches until nothing is left to ask (or, with ``to_file``, one round written to a file). The summary
    is the last round's, with what every round cost. With a spending limit, a round sends only the requests whose
    expected cost at the batch price fits in what is left of it; with ``retry_failed``, stored failures are asked again."""
    _check(workspace)
    budget = _at_batch_price(workspace, limit)
    spent = AnnotationSummary().spend
    last, held_back = None, 0
    retrying = retry_failed  # the failures stored before this run, asked again in its first round only
    for _ in range(ROUNDS):
        requests = capture(workspace, pairs, retrying)
        if not requests:
            break
        waiting = _unfinished(workspace, set(requests))
        asked = {key for row in waiting for key in row.custom_ids}
        new, reserved = _within_budget({key: body for key, body in requests.items() if key not in asked}, budget)
        held_back += len(requests) - len(asked) - len(new)
        if to_file is not None:
            write_requests(workspace, to_file, new, pairs, run_id)
            break
        if new:
            waiting.append(submit(workspace, new, pairs, run_id))
        completions: dict[str, dict[str, Any]] = {}
        for row in waiting:
            results = follow(workspace, row, progress)
            completions |= results.completions
            if budget is not None and row.batch_id == waiting[-1].batch_id and new:
                budget.settle(reserved, row.cost_usd, len(new))
        last = replay(workspace, pairs, completions, run_id, retrying)
        spent = {stage: spent[stage] + last.spend[stage] for stage in spent}
        _mark_stored(workspace, waiting)
        retrying = False
        if held_back:
            break
    summary = last if last is not None and to_file is None else replay(workspace, pairs, {}, run_id, retrying)
    summary.spend = spent
    if held_back and limit is not None:
        summary.stopped_at_budget = limit.limit
    return summary


def capture(workspace: Workspace, pairs: list[Pair], retry_failed: bool = False) -> dict[str, dict[str, Any]]:
    """The request body of every call the next step of the work would make, by the key of the step."""
    engine = CaptureEngine(_served_name(workspace), _structured_output(workspace))
    _annotate(workspace, pairs, engine, None, retry_failed)
    return engine.bodies


def replay(
    workspace: Workspace, pairs: list[Pair], completions: dict[str, dict[str, Any]], run_id: str | None, retry_failed: bool = False
) -> AnnotationSummary:
    """Store the steps a batch answered (and count, as deferred, the ones still waiting)."""
    return _annotate(workspace, pairs, ReplayEngine(completions), run_id, retry_failed)


def _at_batch_price(workspace: Workspace, limit: SpendingLimit | None) -> SpendingLimit | None:
    """The spending limit with a call's expected cost at the batch price (the limit was set from the online one)."""
    if limit is None:
        return None
    share = batch_share(workspace)
    return SpendingLimit(limit.limit, limit.expected * share)


def _within_budget(requests: dict[str, dict[str, Any]], budget: SpendingLimit | None) -> tuple[dict[str, dict[str, Any]], float]:
    """The requests whose expected cost fits in the budget (in order), and what they reserved of it."""
    if budget is None:
        return requests, 0.0
    kept, reserved = {}, 0.0
    for key, body in requests.items():
        amount = budget.reserve()
        if amount is None:
            break
        kept[key], reserved = body, reserved + amount
    return kept, reserved


def submit(workspace: Workspace, requests: dict[str, dict[str, Any]], pairs: list[Pair], run_id: str | None) -> BatchRow:
    client = _client(workspace)
    data = _jsonl(requests)
    uploaded = client.files.create(file=("rae-requests.jsonl", data), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
    row = BatchRow(batch_id=batch.id, provider="api", model=workspace.settings.model.name, status=batch.status, requests=len(requests),
                   custom_ids=list(requests), work=[[p.query_id, p.query, p.product_id] for p in pairs], input_file_id=uploaded.id, run_id=run_id)
    workspace.store.replace(row)
    return row


def follow(workspace: Workspace, row: BatchRow, progress: bool = True, sleep: Callable[[float], None] = time.sleep) -> Results:
    """Poll a batch until it ends, recording its status as it goes, then download what it answered."""
    client = _client(workspace)
    with tqdm(total=row.requests, desc=f"batch {row.batch_id[:16]}", unit="request", disable=not progress, leave=False) as bar:
        while row.status not in TERMINAL:
            sleep(workspace.settings.batch_poll_s)
            batch = client.batches.retrieve(row.batch_id)
            counts = batch.request_counts
            row.status, row.output_file_id, row.error_file_id = batch.status, batch.output_file_id, batch.error_file_id
            row.completed, row.failed = (counts.completed, counts.failed) if counts else (row.completed, row.failed)
            bar.n = row.completed + row.failed
            bar.refresh()
            workspace.store.replace(row)
    output = client.files.content(row.output_file_id).text if row.output_file_id else ""
    results = read_results(output)
    row.cost_usd = _cost(workspace, results)
    row.finished_at = row.finished_at or datetime.now(UTC)
    workspace.store.replace(row)
    return results


def write_requests(workspace: Workspace, path: Path, requests: dict[str, dict[str, Any]], pairs: list[Pair], run_id: str | None) -> BatchRow:
    path.write_bytes(_jsonl(requests))
    row = BatchRow(batch_id=f"file:{path.name}:{uuid.uuid4().hex[:8]}", provider="file", model=workspace.settings.model.name, status="written",
                   requests=len(requests), custom_ids=list(requests), work=[[p.query_id, p.query, p.product_id] for p in pairs], run_id=run_id)
    workspace.store.replace(row)
    return row


def import_results(workspace: Workspace, path: Path) -> AnnotationSummary:
    """Store a results file (the Batch API's output lines, or vLLM run_batch's) for the batches that asked for them."""
    results = read_results(path.read_text())
    with workspace.store.session() as session:
        rows = [r for r in session.scalars(select(BatchRow).where(BatchRow.stored.is_(False))) if set(r.custom_ids) & set(results.completions)]
    if not rows:
        raise ConfigError(f"{path}: no recorded batch asked for these results (write the requests with rae annotate --batch-file first)")
    summary = AnnotationSummary()
    for row in rows:
        pairs = [Pair(*work) for work in row.work]
        summary = summary + replay(workspace, pairs, results.completions, row.run_id)
        row.status, row.completed, row.failed = "completed", len(set(row.custom_ids) & set(results.completions)), results.failed
        row.cost_usd, row.stored, row.finished_at = _cost(workspace, results), True, datetime.now(UTC)
        workspace.store.replace(row)
    return summary


def read_results(text: str) -> Results:
    """Output lines ``{"custom_id", "response": {"status_code", "body": <chat completion>}, "error"}``."""
    completions, failed = {}, 0
    for line in text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        response = entry.get("response") or {}
        body = response.get("body") or {}
        if entry.get("error") or response.get("status_code") != 200 or not body.get("choices"):
            failed += 1
            continue
        usage = body.get("usage") or {}
        completions[entry["custom_id"]] = {
            "text": body["choices"][0]["message"].get("content") or "",
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens"),
        }
    return Results(completions, failed)


def batch_share(workspace: Workspace) -> float:
    """What a batch costs as a share of the online price (half, unless the config's price says otherwise)."""
    spec = workspace.settings.model
    configured = workspace.settings.prices.get(spec.name)
    return configured.batch_share if configured is not None else ModelPrice.model_fields["batch_share"].default


def batch_price(workspace: Workspace) -> ModelPrice | None:
    """A batch's price: the configured or listed online price times its ``batch_share`` (half, by default)."""
    spec = workspace.settings.model
    online = resolve_price(spec, workspace.settings.prices.get(spec.name))
    if online is None:
        return None
    return ModelPrice(input_per_million=online.input_per_million * online.batch_share, output_per_million=online.output_per_million * online.batch_share)


def _annotate(workspace: Workspace, pairs: list[Pair], engine: Any, run_id: str | None, retry_failed: bool = False) -> AnnotationSummary:
    spec = workspace.settings.model
    steps = workspace.steps(run_id, retry_failed)
    steps.model = ModelHandle(spec, batch_price(workspace))  # the same identity (and keys), the batch's price
    steps.refine_attempts = 1  # a batch has no second attempt: a degenerate answer is stored as such
    lm = dspy.LM(spec.name, engine=engine, temperature=spec.temperature, max_tokens=spec.max_tokens, cache=False, num_retries=0)
    with dspy.context(lm=lm, adapter=workspace.model.adapter()):
        return AnnotationRun(steps, workspace.labelled.catalog, workspace.workers, progress=False).run(pairs)


def _unfinished(workspace: Workspace, keys: set[str]) -> list[BatchRow]:
    """Batches in the store, not yet stored, that asked for some of these keys: followed, never submitted again."""
    with workspace.store.session() as session:
        rows = session.scalars(select(BatchRow).where(BatchRow.stored.is_(False), BatchRow.provider == "api")).all()
    return [row for row in rows if keys & set(row.custom_ids)]


def _mark_stored(workspace: Workspace, rows: list[BatchRow]) -> None:
    for row in rows:
        row.stored = row.status in TERMINAL
        workspace.store.replace(row)


def _cost(workspace: Workspace, results: Results) -> float | None:
    price = batch_price(workspace)
    if price is None:
        return None
    tokens_in = sum(c["input_tokens"] or 0 for c in results.completions.values())
    tokens_out = sum(c["output_tokens"] or 0 for c in results.completions.values())
    return round((tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1e6, 6)


def _jsonl(requests: dict[str, dict[str, Any]]) -> bytes:
    lines = [json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False) for key, body in requests.items()]
    return ("\n".join(lines) + "\n").encode()


def _client(workspace: Workspace) -> openai.OpenAI:
    spec = workspace.settings.model
    key = workspace.model.api_key() or "no-key-needed"
    return openai.OpenAI(base_url=spec.api_base, api_key=key, max_retries=spec.num_retries, timeout=spec.timeout_s)


def _served_name(workspace: Workspace) -> str:
    return workspace.settings.model.name.split("/", 1)[-1]


def _structured_output(workspace: Workspace) -> str:
    spec = workspace.settings.model
    return spec.structured_output if spec.api_base else "json_schema"  # OpenAI's own API takes a JSON schema


def _check(workspace: Workspace) -> None:
    if workspace.settings.model.is_embedded:
        raise ConfigError("--batch sends requests to a batch API: the embedded model has none (use --workers, or --processes)")
    if workspace.confidence == "samples":
        raise ConfigError("--batch cannot measure confidence by samples (each judgment would be several requests): set confidence = 'none'")
