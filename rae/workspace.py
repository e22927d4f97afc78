"""Everything a command needs, built from the settings when first asked for: store, model, program, labelled set."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import dspy

from rae.config import Settings
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.load import load_labelled_set
from rae.eval.steps import StoredSteps
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.store.store import Store


class Workspace:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.store)

    @cached_property
    def model(self) -> ModelHandle:
        return ModelHandle(self.settings.model)

    @cached_property
    def annotator(self) -> Annotator:
        return Annotator(guidelines=self.settings.guidelines, chain_of_thought=self.settings.chain_of_thought)

    @cached_property
    def labelled(self) -> LabelledSet:
        return load_labelled_set(self.settings.data, self.settings.label_mapping)

    @property
    def workers(self) -> int:
        """The configured workers, capped by what the model can serve at once (one for the embedded model)."""
        return min(self.settings.workers, self.model.max_workers or self.settings.workers)

    def steps(self, run_id: str | None = None, retry_failed: bool = False) -> StoredSteps:
        return StoredSteps(
            self.annotator, self.store, self.model, self.settings.product_text, run_id=run_id, retry_failed=retry_failed
        )

    @contextmanager
    def using_model(self) -> Iterator[dspy.LM]:
        """The model as DSPy's LM, with the JSON adapter, for the calls made inside the block (and their workers)."""
        lm = self.model.build()
        try:
            with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
                yield lm
        finally:
            lm.close()

    def describe(self) -> dict[str, str]:
        """What a result was computed with, for headers and JSON: never a secret."""
        return {
            "model": self.settings.model.name,
            "guidelines": self.settings.guidelines,
            "program": self.settings.program or "uncompiled",
            "judge_hash": self.steps().hashes["judgment"],
            "store": self.store.engine.url.render_as_string(hide_password=True),
        }
