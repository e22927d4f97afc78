"""Everything a command needs, built from the settings when first asked for: store, model, program, labelled set.

The program is a compiled artifact when there is one: the one named by ``program`` in the settings (``--program``),
or by default the newest artifact fitted for the chosen model with the same guideline mode and chain-of-thought
choice; ``uncompiled`` asks for the plain program. An artifact brings the product-text settings it was fitted with.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import dspy

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.outcome import StepOutcome
from rae.annotate.run import replayed
from rae.config import ConfigError, JudgeMode, ProductTextSpec, Settings
from rae.datasets.labelled_set import LabelledSet, with_reviews
from rae.datasets.load import load_labelled_set
from rae.datasets.records import Pair
from rae.lm.factory import Capabilities, ModelHandle
from rae.programs.annotator import Annotator
from rae.programs.artifacts import COMPILED_DIR, UNCOMPILED, Manifest, list_artifacts, load_artifact
from rae.programs.fingerprint import program_fingerprint
from rae.programs.refine import Refinement
from rae.store.human_labels import latest_ratings
from rae.store.images import ImageCache
from rae.store.products import imported_products
from rae.store.schema import JudgmentRow
from rae.store.store import Store

PROJECT_PROGRAMS = "programs"  # the project's compiled programs, beside its rae.toml and .rae/ store


@dataclass(frozen=True)
class JudgeModeChoice:
    """The judge mode in effect, and why it differs from the one asked for (a model that reads no images), if it does."""

    mode: JudgeMode
    note: str | None = None


class Workspace:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.store)

    @cached_property
    def model(self) -> ModelHandle:
        spec = self.settings.model
        return ModelHandle(spec, self.settings.prices.get(spec.name), score_choices=self.confidence == "probabilities")

    @cached_property
    def confidence(self) -> str:
        """How sure the judge is of each label is measured: by the model's own probabilities, by samples, or not."""
        wanted = self.settings.confidence
        gives = ModelHandle(self.settings.model).gives_probabilities
        if wanted == "auto":
            return "probabilities" if gives else "none"
        if wanted == "probabilities" and not gives:
            raise ConfigError(
                f"{self.settings.model.name} gives no label probabilities: set confidence = 'samples' (or 'none')"
            )
        return wanted

    @property
    def programs_dir(self) -> Path:
        """Where ``rae optimize`` saves: the project's own directory, never rae's installed package (read-only in a
        site-packages, and replaced on the next upgrade)."""
        return Path(self.settings.programs_dir or PROJECT_PROGRAMS)

    @property
    def program_dirs(self) -> tuple[Path, ...]:
        """Where compiled programs are read from: by default the project's, then the ones rae ships; a ``programs_dir``
        the settings name alone (a team that names its directory chooses what its runs may use)."""
        if self.settings.programs_dir or self.programs_dir.resolve() == COMPILED_DIR.resolve():
            return (self.programs_dir,)
        return (self.programs_dir, COMPILED_DIR)

    @cached_property
    def manifest(self) -> Manifest | None:
        """The compiled artifact in use, or None for the uncompiled program."""
        choice = self.settings.program
        if choice == UNCOMPILED:
            return None
        if choice is not None:
            return load_artifact(choice, self.program_dirs)[1]
        compatible = [
            m
            for m in list_artifacts(self.program_dirs)
            if m.model == self.settings.model.name
            and m.guidelines == self.settings.guidelines
            and m.chain_of_thought == self.settings.chain_of_thought
            and m.judge_mode == self.judge_mode.mode
        ]
        return compatible[-1] if compatible else None

    @property
    def refinement(self) -> Refinement:
        return Refinement(self.settings.refine_attempts, self.settings.refine_temperature)

    @property
    def samples(self) -> int:
        """How many answers the judge gives a pair to measure its confidence (one: it gives one)."""
        return self.settings.confidence_samples if self.confidence == "samples" else 1

    @cached_property
    def annotator(self) -> Annotator:
        """The program: the compiled artifact in use, else the plain program the settings describe."""
        if self.manifest is None:
            return Annotator(self.settings.guidelines, self.settings.chain_of_thought, self.judge_mode.mode, self.refinement, self.samples)
        return load_artifact(self.manifest.artifact_id, self.program_dirs, self.refinement, self.samples)[0]

    def paid_models(self) -> list[ModelHandle]:
        """The models this workspace's runs call: the judge's, and the describer's when another model writes the visual
        descriptions (a budget needs a price for each)."""
        return [self.model] + ([self.describer] if self.describer is not self.model else [])

    @cached_property
    def describer(self) -> ModelHandle:
        """The model that writes visual descriptions: ``describer`` in the settings, else the judge's model."""
        spec = self.settings.describer
        return self.model if spec is None else ModelHandle(spec, self.settings.prices.get(spec.name))

    @cached_property
    def judge_mode(self) -> JudgeModeChoice:
        wanted = self.settings.judge_mode
        if wanted == "image" and not self.model.has_vision:
            return JudgeModeChoice("text", f"{self.settings.model.name} reads no images: judging from the text (set model.vision = true if it does)")
        if wanted == "description" and not self.describer.has_vision:
            return JudgeModeChoice(
                "text",
                f"{self.describer.spec.name} reads no images, so there are no visual descriptions: judging from the text "
                "(name a vision model under [describer])",
            )
        return JudgeModeChoice(wanted)

    @cached_property
    def images(self) -> ImageCache | None:
        return None if self.annotator.judge_mode == "text" else ImageCache(self.store, self.settings.cache_dir)

    @property
    def text_spec(self) -> ProductTextSpec:
        return self.manifest.product_text_spec() if self.manifest else self.settings.product_text

    @cached_property
    def labelled(self) -> LabelledSet:
        """The human-labelled set, its catalog completed by the products imported judgment files showed (the catalog's
        own text first); with ``with_reviews``, a new version that includes the reviewers' labels."""
        labelled = load_labelled_set(self.settings.data, self.settings.label_mapping)
        imported = imported_products(self.store)
        if imported.keys() - labelled.catalog.keys():
            labelled = replace(labelled, catalog={**imported, **labelled.catalog})
        if not self.settings.with_reviews:
            return labelled
        return with_reviews(labelled, latest_ratings(self.store))

    @cached_property
    def human_labels(self) -> LabelledSet:
        """Every human label there is: the labelled set's, and the reviewers' for the pairs the set lacks (whatever
        ``with_reviews`` says: an evaluation's correction by humans wants all of them)."""
        return self.human_labels_before(None)

    def human_labels_before(self, moment: datetime | None) -> LabelledSet:
        """The human labels as they stood at ``moment`` (None: now): the labelled set's, and the reviewers' and
        imports' given before then."""
        return with_reviews(load_labelled_set(self.settings.data, self.settings.label_mapping), latest_ratings(self.store, before=moment))

    @property
    def workers(self) -> int:
        """The configured workers, capped by what the model can serve at once (one for the embedded model)."""
        return min(self.settings.workers, self.model.max_workers or self.settings.workers)

    @cached_property
    def executor(self) -> CacheThrough:
        """The one cache-through executor of this workspace: every step, run and command it builds shares it."""
        return CacheThrough(self.store)

    @cached_property
    def sender(self) -> Any:
        """What sends the model's requests (loaded once: the embedded model's weights are read at its first call)."""
        return self.model.sender()

    def judging(
        self,
        run_id: str | None = None,
        annotator: Annotator | None = None,
        text_spec: ProductTextSpec | None = None,
        allow_calls: bool = True,
        model: ModelHandle | None = None,
        sender: Any = None,
    ) -> Judging:
        """The program bound to this store and model, as every command runs it; another program, product text or sender
        may stand in (a candidate being scored, a measurement's variant, a batch's capture)."""
        model = model or self.model
        if sender is None and not allow_calls:
            sender = Capabilities(model)
        elif sender is None:
            sender = self.sender if model is self.model else model.sender()
        describer = None
        if self.describer is not self.model and (annotator or self.annotator).judge_mode == "description":
            describer = (self.describer, self.describer.sender() if allow_calls else Capabilities(self.describer))
        return Judging(
            annotator or self.annotator, self.executor, model, sender, text_spec or self.text_spec, run_id, allow_calls, self.images,
            describer, self.confidence,
        )

    def stored_judgments(self, pairs: list[Pair], annotator: Annotator | None = None) -> dict[Pair, StepOutcome[JudgmentRow]]:
        """What the program (this workspace's, or ``annotator``) says of each pair from the store alone: the judgments of
        the current program and model, as ``rae agreement`` and ``rae evaluate`` read them; no LM call."""
        return replayed(self.judging(annotator=annotator, allow_calls=False), pairs, self.labelled.catalog)

    @contextmanager
    def using_model(self, run_id: str | None = None) -> Iterator[dspy.LM]:
        """The model as DSPy's LM (every call through the store), with the adapter that writes its prompts, for the
        calls made inside the block (an optimizer's, a notebook's)."""
        judging = self.judging(run_id)
        try:
            with judging.context():
                yield judging.lm
        finally:
            judging.flush()

    def describe(self) -> dict[str, str]:
        """What a result was computed with, for headers and JSON: never a secret."""
        return {
            "model": self.settings.model.name,
            "guidelines": self.annotator.guideline_mode,
            "chain_of_thought": str(self.annotator.judge.chain_of_thought),
            "program": self.manifest.artifact_id if self.manifest else UNCOMPILED,
            "judge_mode": self.annotator.judge_mode,
            "judge_mode_note": self.judge_mode.note or "",
            "confidence": self.confidence,
            "program_fingerprint": program_fingerprint(self.annotator),
            "store": self.store.engine.url.render_as_string(hide_password=True),
        }

    def header(self) -> str:
        """The line every command prints first: which model, program, judge hash, guidelines and judge mode."""
        described = self.describe()
        header = (
            f"model {described['model']} · program {described['program']} ({described['program_fingerprint']}) · "
            f"guidelines {described['guidelines']} · judge mode {described['judge_mode']}"
        )
        return header + (f"\nnote: {described['judge_mode_note']}" if described["judge_mode_note"] else "")
