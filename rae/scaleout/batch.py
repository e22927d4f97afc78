"""Batch mode (``--batch``, ``--batch-file``): the same calls as an online run, sent as batches at half the price.

A round: the program runs with the batch capture in place of the model (``rae.lm.batched``): every answer stored so
far is served, and each call it would pay for is noted under its store key and deferred. The noted requests go out as
one batch (the OpenAI Batch API, through the ``openai`` SDK, at the model's ``api_base`` or OpenAI's), each line's
``custom_id`` its store key; rae polls it, downloads its answers and stores each under its key, exactly as an online
answer would be. The next round finds them and goes on: the queries' requirements, then their guidelines, then the
judgments. A round that notes nothing ends the run, and a last pass records what the program made of the answers. A
degenerate answer is kept as such (a batch makes one attempt a step; ``--retry-failed`` online refines it); a request
the batch failed or let expire is asked again by the next run.

Every batch is recorded in the store with the keys of its requests, so a killed ``rae annotate --batch`` finds it and
polls it instead of submitting twice. With ``--batch-file``, the round's requests are written to a JSON Lines file
instead (vLLM's ``run_batch`` reads the same lines), and ``rae batches import`` stores the answers file.
"""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
from tqdm import tqdm

from rae.annotate.call_gate import most_cost
from rae.annotate.run import AnnotationRun, forget_failures
from rae.annotate.spending import Budget, Spend
from rae.annotate.summary import AnnotationSummary
from rae.config import ConfigError, ModelPrice
from rae.datasets.records import Pair
from rae.lm.batched import BatchCapture
from rae.lm.factory import Capabilities, ModelHandle
from rae.lm.pricing import call_cost, resolve_price, total_cost
from rae.programs.refine import Refinement
from rae.store.batches import open_batches
from rae.store.budgets import reserve_each
from rae.store.ledger import Reservation, Settlement
from rae.store.schema import BatchRow
from rae.workspace import Workspace

TERMINAL = ("completed", "failed", "expired", "cancelled")
ROUNDS = 6  # requirements, guidelines, judgments, and an answer that did not parse asked once more
ENDPOINT = "/v1/chat/completions"
STAGE_OF_SPEND = {"judgment": "judgment", "requirements": "requirements_guidelines", "guidelines": "requirements_guidelines"}


@dataclass
class Results:
    """What a batch gave back: answers by store key (text, tokens), and how many requests it failed."""

    completions: dict[str, dict[str, Any]]
    failed: int


def run_in_batches(
    workspace: Workspace, pairs: list[Pair], run_id: str | None, to_file: Path | None = None, progress: bool = True,
    retry_failed: bool = False, budget: Budget | None = None,
) -> AnnotationSummary:
    """Rounds of batches until nothing is left to ask (or, with ``to_file``, one round written to a file). Under a
    budget, each new request is reserved at submission at its most possible cost at the batch price, in order, and
    only those the budget covers are sent; their reservations are settled when the batch's answers are stored. With
    ``retry_failed``, the stored answers that gave a failure are forgotten first, and asked again."""
    _check(workspace)
    if retry_failed:
        forget_failures(workspace.judging(run_id), pairs, workspace.labelled.catalog)
    spent = AnnotationSummary().spend
    held_back = 0
    for _ in range(ROUNDS):
        capture = capture_round(workspace, pairs)
        if not capture.bodies:
            break
        waiting = [row for row in open_batches(workspace.store, "api") if set(capture.bodies) & set(row.custom_ids)]
        asked = {key for row in waiting for key in row.custom_ids}
        new = {key: body for key, body in capture.bodies.items() if key not in asked}
        reserved = _reserved(workspace, capture, list(new), budget)
        if budget is not None:
            held_back += len(new) - len(reserved)
            new = {key: new[key] for key in reserved}
        if to_file is not None:
            write_requests(workspace, to_file, new, pairs, run_id, capture.stages, budget, reserved)
            break
        if new:
            waiting.append(submit(workspace, new, pairs, run_id, capture.stages, budget, reserved))
        for row in waiting:
            stored = store_answers(workspace, row, follow(workspace, row, progress), run_id)
            spent = {stage: spent[stage] + stored.get(stage, Spend()) for stage in spent}
        if held_back:
            break
    summary = _recorded(workspace, pairs, run_id)
    summary.spend = spent
    summary.over_budget = held_back > 0
    return summary


def capture_round(workspace: Workspace, pairs: list[Pair]) -> BatchCapture:
    """The program run over the pairs with every answer stored so far: the calls it would pay for next, noted."""
    capture = _capture(workspace)
    _run(workspace, pairs, capture, None)
    return capture


def _reserved(workspace: Workspace, capture: BatchCapture, keys: list[str], budget: Budget | None) -> dict[str, float]:
    """Each request's most possible cost at the batch price, reserved in order until the budget refuses one; what was
    reserved, by key (nothing without a budget)."""
    if budget is None or not keys:
        return {}
    price = batch_price(workspace)
    wanted = {key: Reservation(budget.budget_id, most_cost(capture.requests[key], price, workspace.settings.model.max_tokens)) for key in keys}
    held = reserve_each(workspace.store, wanted)
    return {key: wanted[key].amount for key in held}


def submit(workspace: Workspace, requests: dict[str, dict[str, Any]], pairs: list[Pair], run_id: str | None, stages: dict[str, str],
           budget: Budget | None = None, reserved: dict[str, float] | None = None) -> BatchRow:
    client = _client(workspace)
    uploaded = client.files.create(file=("rae-requests.jsonl", _jsonl(requests)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
    row = BatchRow(batch_id=batch.id, provider="api", model=workspace.settings.model.name, status=batch.status, requests=len(requests),
                   custom_ids=list(requests), stages={k: stages.get(k, "") for k in requests}, work=_work(pairs), input_file_id=uploaded.id,
                   run_id=run_id, budget_id=budget.budget_id if budget is not None else None, reserved=reserved or None)
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
    row.finished_at = row.finished_at or datetime.now(UTC)
    return read_results(output)


def store_answers(workspace: Workspace, row: BatchRow, results: Results, run_id: str | None) -> dict[str, Spend]:
    """Store a batch's answers under the keys of the requests that asked for them (at the batch price), settle their
    reservations (a request the batch failed or let expire was not billed), mark the batch stored once it has ended, and
    say what its answers cost by stage."""
    price = batch_price(workspace)
    mine = set(row.custom_ids)
    answers, spent = [], {}
    for key, answer in results.completions.items():
        if key not in mine:
            continue
        stage = (row.stages or {}).get(key, "")
        cost = call_cost(price, answer["input_tokens"], answer["output_tokens"])
        answers.append({"fingerprint": key, "model_id": batch_model(workspace).identity, "stage": stage, "request": None, "text": answer["text"],
                        "finish_reason": "stop", "input_tokens": answer["input_tokens"], "output_tokens": answer["output_tokens"],
                        "cost_usd": cost, "latency_s": None, "retries": 0, "probabilities": None, "run_id": run_id, "created_at": datetime.now(UTC)})
        spend_stage = STAGE_OF_SPEND.get(stage, "judgment")
        spent[spend_stage] = spent.get(spend_stage, Spend()) + Spend(1, answer["input_tokens"] or 0, answer["output_tokens"] or 0, cost)
    row.stored = row.status in TERMINAL or row.provider == "file"
    workspace.store.put_answers(answers, settlements=_settlements(row, {a["fingerprint"]: a["cost_usd"] for a in answers}))
    row.cost_usd = total_cost(a["cost_usd"] for a in answers)
    if row.stored:
        row.reserved = None
    workspace.store.replace(row)
    return spent


def _settlements(row: BatchRow, costs: dict[str, float | None]) -> list[Settlement]:
    """Settle the reservation of each answered request with its cost, and, once the batch has ended, of each request
    left unanswered with nothing."""
    if not row.budget_id or not row.reserved:
        return []
    done = [key for key in row.reserved if key in costs or row.stored]
    return [Settlement(row.budget_id, row.reserved[key], costs.get(key, 0.0)) for key in done]


def write_requests(workspace: Workspace, path: Path, requests: dict[str, dict[str, Any]], pairs: list[Pair], run_id: str | None,
                   stages: dict[str, str], budget: Budget | None = None, reserved: dict[str, float] | None = None) -> BatchRow:
    path.write_bytes(_jsonl(requests))
    row = BatchRow(batch_id=f"file:{path.name}:{uuid.uuid4().hex[:8]}", provider="file", model=workspace.settings.model.name, status="written",
                   requests=len(requests), custom_ids=list(requests), stages={k: stages.get(k, "") for k in requests}, work=_work(pairs),
                   run_id=run_id, budget_id=budget.budget_id if budget is not None else None, reserved=reserved or None)
    workspace.store.replace(row)
    return row


def import_results(workspace: Workspace, path: Path) -> AnnotationSummary:
    """Store a results file (the Batch API's output lines, or vLLM run_batch's) for the batches that asked for them,
    then record what the program makes of them."""
    results = read_results(path.read_text())
    rows = [r for r in open_batches(workspace.store) if set(r.custom_ids) & set(results.completions)]
    if not rows:
        raise ConfigError(f"{path}: no recorded batch asked for these results (write the requests with rae annotate --batch-file first)")
    summary = AnnotationSummary()
    for row in rows:
        row.status, row.completed, row.failed = "completed", len(set(row.custom_ids) & set(results.completions)), results.failed
        row.finished_at = datetime.now(UTC)
        spent = store_answers(workspace, row, results, row.run_id)
        done = _recorded(workspace, [Pair(*work) for work in row.work], row.run_id)
        done.spend = {stage: done.spend[stage] + spent.get(stage, Spend()) for stage in done.spend}
        summary = summary + done
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


def _run(workspace: Workspace, pairs: list[Pair], capture: BatchCapture, run_id: str | None) -> AnnotationSummary:
    """The program over the pairs, one attempt a step (a batch has no second one), deferring what is not stored."""
    program = workspace.annotator.with_refinement(Refinement(1, workspace.settings.refine_temperature))
    judging = workspace.judging(run_id, annotator=program, model=capture.model, sender=capture)
    return AnnotationRun(judging, workspace.labelled.catalog, workspace.workers, progress=False).run(pairs)


def _recorded(workspace: Workspace, pairs: list[Pair], run_id: str | None) -> AnnotationSummary:
    """The last pass: what the program makes of the stored answers, recorded (anything still unanswered is deferred)."""
    return _run(workspace, pairs, _capture(workspace), run_id)


def _capture(workspace: Workspace) -> BatchCapture:
    """A capture that renders requests as the online engine would, and notes them as the batch sends them: the keys are
    the batch model's (its body), at the batch price."""
    online = Capabilities(workspace.model)
    return BatchCapture(batch_model(workspace), online.supports_response_schema, online.supported_params)


def batch_model(workspace: Workspace) -> ModelHandle:
    return ModelHandle(workspace.settings.model, batch_price(workspace), batch=True)


def _work(pairs: list[Pair]) -> list[list[str]]:
    return [[p.query_id, p.query, p.product_id] for p in pairs]


def _jsonl(requests: dict[str, dict[str, Any]]) -> bytes:
    lines = [json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False) for key, body in requests.items()]
    return ("\n".join(lines) + "\n").encode()


def _client(workspace: Workspace) -> openai.OpenAI:
    spec = workspace.settings.model
    key = workspace.model.api_key() or "no-key-needed"
    return openai.OpenAI(base_url=spec.api_base, api_key=key, max_retries=spec.num_retries, timeout=spec.timeout_s)


def _check(workspace: Workspace) -> None:
    if workspace.settings.model.is_embedded:
        raise ConfigError("--batch sends requests to a batch API: the embedded model has none (use --workers, or --processes)")
    if workspace.confidence == "samples":
        raise ConfigError("--batch cannot measure confidence by samples (each judgment would be several requests): set confidence = 'none'")
