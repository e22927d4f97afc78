"""The cache-through executor: a key is paid once, whoever asks for it and however their requests interleave, from
threads (an optimizer's) or from one event loop (a run's)."""

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from rae.annotate.executor import CacheThrough
from rae.store.budgets import budget_row, open_budget
from rae.store.schema import LMCallRow, RequirementsRow
from rae.store.store import Claim, Store


def answer(key: str, text: str = '{"label": "irrelevant"}') -> dict:
    return {"fingerprint": key, "model_id": "m", "stage": "judgment", "request": {"messages": []}, "text": text, "finish_reason": "stop",
            "input_tokens": 10, "output_tokens": 2, "cost_usd": 0.0, "latency_s": 0.1, "retries": 0, "probabilities": None, "run_id": None,
            "created_at": datetime.now(UTC)}


class Payer:
    """A paid call that counts how often it was made (and can wait for a signal before answering)."""

    def __init__(self, key: str, gate: threading.Event | None = None):
        self.key, self.gate, self.calls = key, gate, 0
        self.lock = threading.Lock()

    def __call__(self) -> dict:
        with self.lock:
            self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        return answer(self.key)

    async def paid(self) -> dict:
        with self.lock:
            self.calls += 1
        await asyncio.sleep(0.01)
        return answer(self.key)


def test_a_hit_pays_nothing_and_a_miss_pays_once(store):
    executor = CacheThrough(store)
    pay = Payer("k")
    first, second = executor.through("k", pay), executor.through("k", pay)
    assert (first.paid, second.paid) == (True, False)
    assert pay.calls == 1 and second.answer.text == '{"label": "irrelevant"}'
    third = asyncio.run(executor.athrough("k", pay.paid))  # the same key from an event loop: a hit
    assert third.paid is False and pay.calls == 1
    executor.close()


class ClaimsWatched(Store):
    """A store that tells the test when a claim was refused (someone else holds the key)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.refused = threading.Event()

    def _read_or_claim(self, connection, fingerprints, owner, lease_s, reservations):  # every claim, alone or in a group's exchange
        claims = super()._read_or_claim(connection, fingerprints, owner, lease_s, reservations)
        if any(not c.held and c.row is None for c in claims.values()):
            self.refused.set()
        return claims


def test_two_executors_in_one_process_never_both_pay_for_a_key(store_url):
    """Two workspaces of one process (each with its own executor) need the same key at the same moment. The first
    pays; the second, refused the claim, waits for the first's answer instead of paying too."""
    gate = threading.Event()
    watched = ClaimsWatched(store_url)
    first, second = CacheThrough(Store(store_url), poll_s=0.05), CacheThrough(watched, poll_s=0.05)
    pay = Payer("k", gate)
    results = {}
    paying = threading.Thread(target=lambda: results.__setitem__("first", first.through("k", pay)))
    paying.start()
    while pay.calls == 0:  # the first executor holds the claim and is paying
        threading.Event().wait(0.01)
    waiting = threading.Thread(target=lambda: results.__setitem__("second", asyncio.run(second.athrough("k", pay.paid))))
    waiting.start()
    assert watched.refused.wait(10)  # the second asked for the claim and was told to wait
    gate.set()
    paying.join(10)
    waiting.join(10)
    assert pay.calls == 1
    assert results["first"].paid is True and results["second"].paid is False
    assert results["second"].answer.fingerprint == "k"
    second.close()


class SlowClaims(Store):
    """A store whose claim, like one that waited on the write lock, lets another claimant finish between its first
    read of the key (a miss) and taking the claim."""

    def __init__(self, url: str, meanwhile):
        super().__init__(url)
        self.meanwhile = meanwhile

    def _take_claims(self, connection, keys, owner, now, until) -> dict[str, bool]:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()  # the other process stores the answer and lets go of its claim, then this claim goes through
        return super()._take_claims(connection, keys, owner, now, until)


def test_a_claim_won_just_after_another_claimant_stored_the_answer_does_not_pay_again(store_url):
    """The measured hole: B reads the store (a miss), A pays, stores and lets go, then B's claim succeeds. B must read
    the store once more and serve A's answer; before that re-read, B paid a second time."""
    pay = Payer("k")
    a = CacheThrough(Store(store_url))
    b = CacheThrough(SlowClaims(store_url, meanwhile=lambda: a.through("k", pay)))
    result = b.through("k", pay)
    a.flush()
    assert pay.calls == 1 and result.paid is False
    assert Store(store_url).get(LMCallRow, "k") is not None


def test_a_failed_call_releases_its_claim_so_the_next_caller_can_pay(store):
    executor = CacheThrough(store)

    def broken() -> dict:
        raise TimeoutError("the model did not answer")

    async def abroken() -> dict:
        raise TimeoutError("the model did not answer")

    with pytest.raises(TimeoutError):
        executor.through("k", broken)
    with pytest.raises(TimeoutError):
        asyncio.run(executor.athrough("k2", abroken))
    other = CacheThrough(store)
    assert other.through("k", Payer("k")).paid is True  # not left waiting on a dead claim
    assert other.through("k2", Payer("k2")).paid is True
    executor.close()


def test_many_threads_of_one_executor_pay_once_per_key(store):
    executor = CacheThrough(store)
    pays = {key: Payer(key) for key in ("a", "b", "c")}
    threads = [threading.Thread(target=executor.through, args=(key, pays[key])) for key in "abc" * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {key: pay.calls for key, pay in pays.items()} == {"a": 1, "b": 1, "c": 1}


@pytest.mark.parametrize("grouped_on_the_loop", [False, True])
def test_many_calls_in_flight_on_one_loop_pay_once_per_key(store, grouped_on_the_loop):
    """A run's calls on one event loop: the same key asked by many at once is paid once (the others share its
    answer), and their store traffic is grouped by the gateway, on its thread or (a run's loop on SQLite) on the loop
    itself; a second round is served from the store."""
    executor = CacheThrough(store)
    pays = {key: Payer(key) for key in ("a", "b", "c")}

    async def all_at_once() -> list:
        async def asked() -> list:
            return await asyncio.gather(*(executor.athrough(key, pays[key].paid) for key in "abc" * 20))

        if not grouped_on_the_loop:
            return await asked()
        with executor.grouped_on_this_loop():
            return await asked()

    results = asyncio.run(all_at_once())
    assert {key: pay.calls for key, pay in pays.items()} == {"a": 1, "b": 1, "c": 1}
    assert sum(r.paid for r in results) == 3
    executor.flush()
    assert set(store.get_many(LMCallRow, "abc")) == set("abc")
    again = asyncio.run(all_at_once())
    assert sum(r.paid for r in again) == 0 and {key: pay.calls for key, pay in pays.items()} == {"a": 1, "b": 1, "c": 1}
    executor.close()


def test_a_stored_answer_is_served_unclaimed_and_a_claim_reads_the_key_again(store):
    """The executor's one transaction for a key: a stored answer is the answer and nothing is claimed; otherwise the
    key is claimed and read again after the claim."""
    store.put_answers([answer("k")])
    hit = store.read_or_claim(["k"], "me", lease_s=60)["k"]
    assert not hit.held and hit.row.text == '{"label": "irrelevant"}'
    assert store.read_or_claim(["k2"], "someone else", lease_s=60)["k2"] == Claim(held=True, row=None)
    assert store.read_or_claim(["k2"], "me", lease_s=60)["k2"] == Claim(held=False, row=None)  # held by someone else
    store.put_answers([answer("k2")], owner="someone else")  # stored, and the claim let go in the same transaction
    assert store.read_or_claim(["k2"], "me", lease_s=60)["k2"].row is not None


def requirement_record(fingerprint: str, query: str | None = "red kettle") -> RequirementsRow:
    return RequirementsRow(fingerprint=fingerprint, program_hash="p", model_id="m", input_hash="i", status="ok", query=query,
                           requirements=[{"name": "type", "value": "kettle", "importance": "must"}], created_at=datetime.now(UTC))


def test_a_record_left_with_unset_columns_gets_their_defaults(store):
    """A record built without the columns that have defaults (when it was made, how many attempts) is stored with them."""
    row = requirement_record("k")
    row.created_at, row.attempts = None, None
    assert store.put(row) is True
    stored = store.get(RequirementsRow, "k")
    assert stored.attempts == 1 and stored.created_at is not None


def test_a_row_that_cannot_be_stored_is_an_error_not_a_silent_skip(store):
    """Only a duplicate key is skipped quietly: a row that cannot be stored (a required column missing) is an error."""
    with pytest.raises(Exception, match="(?i)null"):
        store.put(requirement_record("k", query=None))
    assert store.get(RequirementsRow, "k") is None
    assert store.put(requirement_record("k")) is True and store.put(requirement_record("k")) is False  # the duplicate: skipped


def costing(key: str, cost: float) -> dict:
    return {**answer(key), "cost_usd": cost}


def test_a_call_is_reserved_before_it_is_paid_settled_after_and_refused_when_the_budget_cannot_cover_it(store):
    """The ledger: a reservation of the most a call can cost, settled with what it cost; a call whose reservation
    does not fit is neither claimed nor paid."""
    from rae.annotate.executor import OverBudget
    from rae.store.ledger import Reservation

    budget = open_budget(store, 1.0)
    executor = CacheThrough(store)

    async def paid(key: str, cost: float) -> dict:
        return costing(key, cost)

    through = asyncio.run(executor.athrough("a", lambda: paid("a", 0.25), Reservation(budget, 0.6)))
    executor.flush()
    ledger = budget_row(store, budget)
    assert through.paid and ledger.spent_usd == pytest.approx(0.25) and ledger.reserved_usd == pytest.approx(0.0) and ledger.calls == 1
    calls = []

    async def never(key: str) -> dict:
        calls.append(key)
        return costing(key, 0.0)

    with pytest.raises(OverBudget):
        asyncio.run(executor.athrough("b", lambda: never("b"), Reservation(budget, 0.8)))  # 0.25 + 0.8 > 1
    assert calls == [] and budget_row(store, budget).refused == 1
    assert CacheThrough(store).through("b", Payer("b")).paid is True  # not left claimed: another caller pays it
    hit = asyncio.run(executor.athrough("a", lambda: never("a"), Reservation(budget, 5.0)))  # a hit reserves nothing
    assert hit.paid is False and budget_row(store, budget).refused == 1
    executor.close()


def test_a_failed_call_settles_at_nothing_and_a_timed_out_one_at_its_reservation(store):
    from dspy import lm15

    from rae.store.ledger import Reservation

    budget = open_budget(store, 10.0)
    executor = CacheThrough(store)

    async def refused() -> dict:
        raise lm15.AuthError("401", provider="server")

    async def timed_out() -> dict:
        raise lm15.TimeoutError("no answer", provider="server")

    with pytest.raises(lm15.AuthError):
        asyncio.run(executor.athrough("a", refused, Reservation(budget, 1.0)))
    assert budget_row(store, budget).spent_usd == 0.0 and budget_row(store, budget).reserved_usd == pytest.approx(0.0)
    with pytest.raises(lm15.TimeoutError):
        asyncio.run(executor.athrough("b", timed_out, Reservation(budget, 1.0)))
    assert budget_row(store, budget).spent_usd == pytest.approx(1.0)  # it may have been billed
    executor.close()


def test_many_calls_in_flight_never_pass_the_budget_by_the_ledger(store):
    """64 calls at once, each reserving 0.1 and costing 0.09, against a budget of 1.0: ten fit at once, the others wait
    for them to settle, and an eleventh fits once they have (0.90 spent + 0.1 held); after it nothing can, so the rest
    are refused, and the ledger's spent stays under the limit."""
    from rae.annotate.executor import OverBudget
    from rae.store.ledger import Reservation

    budget = open_budget(store, 1.0)
    executor = CacheThrough(store)

    async def paid(key: str) -> dict:
        await asyncio.sleep(0.01)
        return costing(key, 0.09)

    async def one(key: str) -> bool:
        try:
            return (await executor.athrough(key, lambda: paid(key), Reservation(budget, 0.1))).paid
        except OverBudget:
            return False

    async def all_of_them() -> list[bool]:
        with executor.grouped_on_this_loop():  # as a run's loop does
            return await asyncio.gather(*(one(f"k{i}") for i in range(64)))

    paid_for = sum(asyncio.run(all_of_them()))
    executor.flush()
    ledger = budget_row(store, budget)
    assert paid_for == ledger.calls == 11 and ledger.spent_usd <= 1.0 and ledger.refused == 64 - paid_for
    executor.close()


@pytest.mark.parametrize(("cost", "paid"), [(0.01, 64), (0.05, 19)])
def test_calls_the_budget_covers_once_calls_in_flight_settle_wait_for_them_instead_of_stopping_the_run(store, cost, paid):
    """Each call reserves 0.1 and costs ``cost``; with 64 at once against 1.0 only ten reservations fit at a time.
    Refusing the other 54 would stop a run that spent a tenth of its budget (what ``rae annotate --budget`` once did:
    $0.07 of $0.30, 12 calls refused). They wait for this claimant's own calls to settle: at 0.01 a call all 64 are
    paid; at 0.05 exactly 19 (after 18, 0.90 spent leaves room for one more reservation of 0.1; after 19, none)."""
    from rae.annotate.executor import OverBudget
    from rae.store.ledger import Reservation

    budget = open_budget(store, 1.0)
    executor = CacheThrough(store, poll_s=0.01)

    async def one(key: str) -> bool:
        async def pay() -> dict:
            await asyncio.sleep(0.01)
            return costing(key, cost)

        try:
            return (await executor.athrough(key, pay, Reservation(budget, 0.1))).paid
        except OverBudget:
            return False

    async def all_of_them() -> list[bool]:
        with executor.grouped_on_this_loop():
            return await asyncio.gather(*(one(f"k{i}") for i in range(64)))

    assert sum(asyncio.run(all_of_them())) == paid
    executor.flush()
    ledger = budget_row(store, budget)
    assert ledger.calls == paid and ledger.refused == 64 - paid and ledger.spent_usd == pytest.approx(paid * cost)
    assert ledger.reserved_usd == pytest.approx(0.0)
    executor.close()
