import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dspy
import pytest
from sqlalchemy import create_engine, text

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.config import ModelSpec, ProductTextSpec
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.records import Product, Rating
from rae.labels import ESCI_MAPPING
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.store.store import Store
from rae.workspace import Workspace
from tests.postgres import throwaway_server
from tests.scripted import ScriptedEngine, scripted_lm

# query id, query, [(product id, title, ESCI label)]
TINY = [
    ("q1", "red kettle", [("p1", "Red kettle 1.7l", "E"), ("p2", "Blue kettle", "S"), ("p3", "Red toaster", "I"), ("p4", "Kettle descaler", "C")]),
    ("q2", "running shoes", [("p5", "Trail running shoes", "E"), ("p6", "Walking shoes", "S"), ("p7", "Shoe laces", "C"), ("p8", "Running socks", "I")]),
    ("q3", "desk lamp", [("p9", "LED desk lamp", "E"), ("p10", "Floor lamp", "S"), ("p11", "Desk", "I"), ("p12", "Lamp bulb", "C")]),
]


def tiny_labelled_set() -> LabelledSet:
    judgments, catalog = [], {}
    for query_id, query, products in TINY:
        for product_id, title, esci in products:
            judgments.append(Rating(query_id, query, product_id, ESCI_MAPPING[esci], original_label=esci))
            catalog[product_id] = Product(product_id=product_id, title=title, brand="Acme", category=("Home",))
    return LabelledSet.build("tiny", judgments, catalog, splits={"q1": "dev", "q2": "dev", "q3": "test"})


@pytest.fixture
def tiny() -> LabelledSet:
    return tiny_labelled_set()


REQUIRE_POSTGRES = os.environ.get("RAE_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """A PostgreSQL server for the run: the one ``RAE_TEST_POSTGRES`` names, else a throwaway one (``tests.postgres``)."""
    if os.environ.get("RAE_TEST_POSTGRES"):
        yield os.environ["RAE_TEST_POSTGRES"]
        return
    with throwaway_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: an SQLite file, and a new PostgreSQL database when a server can be had."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rae.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    if not server:
        if REQUIRE_POSTGRES:
            pytest.fail("RAE_REQUIRE_POSTGRES=1 but there is no PostgreSQL: install it (initdb, pg_ctl) or set RAE_TEST_POSTGRES")
        pytest.skip("no PostgreSQL on this machine (initdb, pg_ctl) and no RAE_TEST_POSTGRES")
    name = f"rae_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def store(store_url: str) -> Store:
    return Store(store_url)


@pytest.fixture
def engine() -> Iterator[ScriptedEngine]:
    """A scripted model, installed as DSPy's LM (with the JSON adapter) for the test: a program run with no store."""
    scripted = ScriptedEngine()
    with dspy.context(lm=scripted_lm(scripted), adapter=dspy.JSONAdapter()):
        yield scripted


@pytest.fixture
def model() -> ModelHandle:
    """A model identity that needs no weights on disk; the calls themselves go to the scripted engine.

    Its retry waits are recorded (``handle.waits``) instead of slept.
    """
    handle = ModelHandle(ModelSpec(name="openai/scripted-test"))
    handle.waits = []

    async def waited(seconds: float) -> None:
        handle.waits.append(seconds)

    handle.call_policy.sleep, handle.call_policy.asleep = handle.waits.append, waited
    return handle


@pytest.fixture
def scripted() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def judging(store: Store, model: ModelHandle, scripted: ScriptedEngine) -> Judging:
    """The plain program bound to a fresh store and the scripted model (the engine behind the store)."""
    return Judging(Annotator(), CacheThrough(store), model, scripted, ProductTextSpec())


def install_scripted(monkeypatch: pytest.MonkeyPatch, scripted: ScriptedEngine) -> ScriptedEngine:
    """Commands run with the scripted model in place of the embedded one (as the engine behind the store); the store
    keys stay the embedded model's."""
    monkeypatch.setattr(Workspace, "sender", property(lambda self: scripted))
    monkeypatch.setattr("rae.workspace.Capabilities", lambda model: scripted)  # what a lookup-only run renders for
    return scripted


@pytest.fixture
def scripted_workspace(monkeypatch) -> ScriptedEngine:
    return install_scripted(monkeypatch, ScriptedEngine())


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project directory to run commands in: a rae.toml without MLflow, the working directory for the test."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\ntracking_uri = "none"\n')
    return tmp_path
