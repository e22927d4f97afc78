"""The cache-through executor: a key is paid once, whoever asks for it and however their requests interleave."""

import threading
from datetime import UTC, datetime

import pytest

from rae.annotate.executor import CacheThrough, Paid
from rae.annotate.spending import Spend
from rae.store.schema import RequirementsRow
from rae.store.store import Claim, Store


def requirement_row(fingerprint: str, query: str = "red kettle") -> RequirementsRow:
    return RequirementsRow(
        fingerprint=fingerprint, program_hash="p", model_id="m", input_hash="i", status="ok", query=query,
        requirements=[{"name": "type", "value": "kettle", "importance": "must"}], created_at=datetime.now(UTC),
    )


class Payer:
    """A paid call that counts how often it was made (and can wait for a signal before answering)."""

    def __init__(self, fingerprint: str, gate: threading.Event | None = None):
        self.fingerprint, self.gate, self.calls = fingerprint, gate, 0
        self.lock = threading.Lock()

    def __call__(self) -> Paid[RequirementsRow]:
        with self.lock:
            self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        return Paid(requirement_row(self.fingerprint), Spend(calls=1))


def test_a_hit_pays_nothing_and_a_miss_pays_once(store):
    executor = CacheThrough(store)
    pay = Payer("k")
    first = executor.through(RequirementsRow, "k", pay)
    second = executor.through(RequirementsRow, "k", pay)
    assert (first.cached, first.spend.calls, second.cached, second.spend.calls) == (False, 1, True, 0)
    assert pay.calls == 1 and second.row.query == "red kettle"


class ClaimsWatched(Store):
    """A store that tells the test when a claim was refused (someone else holds the key)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.refused = threading.Event()

    def claim(self, fingerprint: str, owner: str, lease_s: float, reading=None, unless=None) -> Claim:
        claim = super().claim(fingerprint, owner, lease_s, reading, unless)
        if not claim.held:
            self.refused.set()
        return claim


def test_two_executors_in_one_process_never_both_pay_for_a_key(store_url):
    """Two workspaces of one process (each with its own executor) need the same key at the same moment. The first
    pays; the second, refused the claim, waits for the first's row instead of paying too."""
    gate = threading.Event()
    watched = ClaimsWatched(store_url)
    first, second = CacheThrough(Store(store_url), poll_s=0.05), CacheThrough(watched, poll_s=0.05)
    pay = Payer("k", gate)
    results = {}
    paying = threading.Thread(target=lambda: results.__setitem__("first", first.through(RequirementsRow, "k", pay)))
    paying.start()
    while pay.calls == 0:  # the first executor holds the claim and is paying
        threading.Event().wait(0.01)
    waiting = threading.Thread(target=lambda: results.__setitem__("second", second.through(RequirementsRow, "k", pay)))
    waiting.start()
    assert watched.refused.wait(10)  # the second asked for the claim and was told to wait
    gate.set()
    paying.join(10)
    waiting.join(10)
    assert pay.calls == 1
    assert results["first"].cached is False and results["second"].cached is True
    assert results["second"].row.fingerprint == "k"


class SlowClaims(Store):
    """A store whose claim, like one that waited on the write lock, lets another claimant finish between its first
    read of the key (a miss) and taking the claim."""

    def __init__(self, url: str, meanwhile):
        super().__init__(url)
        self.meanwhile = meanwhile

    def _take_claim(self, transaction, values, now) -> bool:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()  # the other process stores the row and releases its claim, then this claim goes through
        return super()._take_claim(transaction, values, now)


def test_a_claim_won_just_after_another_claimant_stored_the_row_does_not_pay_again(store_url):
    """The measured hole: B reads the store (a miss), A pays, stores and releases, then B's claim succeeds. B must read
    the store once more and serve A's row; before that re-read, B paid a second time."""
    pay = Payer("k")
    a = CacheThrough(Store(store_url))
    b = CacheThrough(SlowClaims(store_url, meanwhile=lambda: a.through(RequirementsRow, "k", pay)))
    result = b.through(RequirementsRow, "k", pay)
    assert pay.calls == 1 and result.cached is True and result.spend.calls == 0
    assert Store(store_url).get(RequirementsRow, "k") is not None


def test_a_failed_call_releases_its_claim_so_the_next_worker_can_pay(store):
    executor = CacheThrough(store)

    def broken() -> Paid[RequirementsRow]:
        raise TimeoutError("the model did not answer")

    with pytest.raises(TimeoutError):
        executor.through(RequirementsRow, "k", broken)
    other = CacheThrough(store)
    assert other.through(RequirementsRow, "k", Payer("k")).cached is False  # not left waiting on a dead claim


def test_many_workers_of_one_executor_pay_once_per_key(store):
    executor = CacheThrough(store)
    pays = {key: Payer(key) for key in ("a", "b", "c")}
    threads = [threading.Thread(target=executor.through, args=(RequirementsRow, key, pays[key])) for key in "abc" * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {key: pay.calls for key, pay in pays.items()} == {"a": 1, "b": 1, "c": 1}


def test_a_claim_unless_stored_answers_a_stored_row_without_claiming(store):
    """The executor's one transaction for a key: a row that serves is the answer and nothing is claimed; a row that does
    not serve (a failure to retry) is claimed over, and read again after the claim."""
    store.put(requirement_row("k"))
    hit = store.claim("k", "me", lease_s=60, reading=RequirementsRow, unless=lambda row: row.status == "ok")
    assert not hit.held and hit.row.query == "red kettle"
    assert store.claim("k", "someone else", lease_s=60).held  # "me" was never given a claim to let go of
    retried = store.claim("k2", "me", lease_s=60, reading=RequirementsRow, unless=lambda row: False)
    assert retried.held and retried.row is None
    store.put(requirement_row("k3"))
    failed_to_retry = store.claim("k3", "me", lease_s=60, reading=RequirementsRow, unless=lambda row: row.status != "ok")
    assert failed_to_retry.held and failed_to_retry.row.query == "red kettle"


def test_a_claim_reads_the_row_in_its_own_transaction(store):
    """The claim answers with the key's row as it stands once claimed, so the protocol needs no separate re-read."""
    assert store.claim("k", "me", lease_s=60, reading=RequirementsRow) == Claim(held=True, row=None)
    store.put(requirement_row("k"), release_claim_of="me")
    claim = store.claim("k", "someone else", lease_s=60, reading=RequirementsRow)
    assert claim.held and claim.row.query == "red kettle"


def test_a_row_left_with_unset_columns_gets_their_defaults(store):
    """A row built without the columns that have defaults (when it was made, how many attempts) is stored with them."""
    row = requirement_row("k")
    row.created_at, row.attempts = None, None
    assert store.put(row) is True
    stored = store.get(RequirementsRow, "k")
    assert stored.attempts == 1 and stored.created_at is not None


def test_a_row_that_cannot_be_stored_is_an_error_not_a_silent_skip(store):
    """Only a duplicate key is skipped quietly. Before, any integrity error (a required column missing) was taken for
    "someone else stored it first", and the paid answer was dropped without a word."""
    row = requirement_row("k")
    row.query = None
    with pytest.raises(Exception, match="(?i)null"):
        store.put(row)
    assert store.get(RequirementsRow, "k") is None
    assert store.put(requirement_row("k")) is True and store.put(requirement_row("k")) is False  # the duplicate: skipped
