import random

from dspy.utils.exceptions import LMRateLimitError, LMServerError

from rae.config import ModelPrice, ModelSpec
from rae.lm.limits import RateLimiter
from rae.lm.pricing import call_cost, resolve_price
from rae.lm.retry import RetryPolicy


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_requests_per_minute_pace_the_requests():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        limiter.acquire()
    assert clock.now == 0.0  # a full bucket: the first minute's requests go at once
    limiter.acquire()
    assert clock.now == 1.0  # then one a second


def test_tokens_per_minute_hold_requests_while_in_debt():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.spend(9000)  # 3000 tokens over the limit
    limiter.acquire()
    assert 29.9 < clock.now < 31  # 3000 tokens at 100 a second


def test_no_limit_never_waits():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
        limiter.spend(10_000)
    assert clock.slept == []


def test_backoff_is_jittered_exponential_and_honours_retry_after():
    policy = RetryPolicy(max_retries=6, base_s=0.5, cap_s=60)
    rng = random.Random(0)
    server_error = LMServerError("boom", model="m")
    waits = [policy.delay(n, server_error, rng) for n in range(1, 7)]
    assert all(0 <= w <= 0.5 * 2 ** (n - 1) for n, w in zip(range(1, 7), waits, strict=True))
    assert len(set(waits)) == 6  # jitter: no two workers come back together
    limited = LMRateLimitError("slow down", model="m", retry_after=7)
    assert 7 <= policy.delay(1, limited, rng) <= 7.5
    assert policy.delay(1, LMRateLimitError("x", model="m", retry_after=3600), rng) <= 60.5


def test_a_configured_price_wins_and_the_embedded_model_is_free():
    price = ModelPrice(input_per_million=0.2, output_per_million=0.8)
    assert call_cost(resolve_price(ModelSpec(name="openai/my-llama"), price), 1_000_000, 500_000) == 0.6
    assert call_cost(resolve_price(ModelSpec(), None), 1000, 100) == 0.0
    assert call_cost(resolve_price(ModelSpec(name="openai/no-such-model-xyz"), None), 1000, 100) is None
    assert call_cost(price, None, None) is None and call_cost(price, 1000, None) is None  # a server that reports no usage: unknown
    assert call_cost(resolve_price(ModelSpec(), None), None, None) == 0.0  # free whatever the tokens
    known = call_cost(resolve_price(ModelSpec(name="openai/gpt-4o-mini"), None), 1_000_000, 0)
    assert known is not None and 0 < known < 10  # LiteLLM's shipped price list, read offline
