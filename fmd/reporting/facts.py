"""What one run left behind, as the answers read it: each training run's log and metrics, and the rest."""
from __future__ import annotations

from dataclasses import dataclass, field

from fmd.core import runs
from fmd.reporting.model_facts import ModelFacts


@dataclass
class RunFacts:
    """One training run of the chain: the last record of its log and its metrics file."""

    run: runs.Run
    record: dict | None
    metrics: dict | None

    @property
    def epochs(self) -> int:
        """How many epochs the run logged."""
        return len(self.record['val_acc']) if self.record else 0

    @property
    def best_epoch(self) -> int | None:
        """1-based epoch of the best-validation checkpoint (the first maximum, as Trainer saves)."""
        if not self.record or not self.record.get('val_acc'):
            return None
        logged = self.record.get('best_epoch')
        if isinstance(logged, int) and 1 <= logged <= self.epochs:
            return logged
        values = self.record['val_acc']
        return values.index(max(values)) + 1

    def at_best(self, key: str) -> float | None:
        """The logged value of `key` (e.g. 'test_acc') at the best epoch."""
        epoch = self.best_epoch
        return None if epoch is None else self.record[key][epoch - 1]

    @property
    def pretrained(self) -> bool | None:
        """Whether Xception started from ImageNet weights; None when not logged."""
        value = (self.record or {}).get('pretrained')
        return value if isinstance(value, bool) else None

    @property
    def seconds_per_epoch(self) -> float | None:
        """Mean wall time of one epoch (training plus validation and test), if logged."""
        seconds = (self.record or {}).get('epoch_seconds') or []
        return sum(seconds) / len(seconds) if seconds else None

    def fake_auc(self) -> float | None:
        """Test ROC AUC of the second (fake) output, from the metrics file."""
        return self.metrics['second_score']['roc_auc'] if self.metrics else None

    @property
    def label(self) -> str:
        """'SimpleNet on fakes_dataset': how the report names the run."""
        return f'{self.run.model} on {self.run.dataset}'


@dataclass
class Facts:
    """Everything the answers read: the runs, the models, the data, the timings, what is missing."""

    runs: dict[tuple[str, str], RunFacts]
    models: ModelFacts
    data: dict
    split_counts: dict[str, dict[str, tuple[int, int]]]
    timings: list[dict]
    bonus: dict | None
    saliency: dict[tuple[str, str], dict]
    missing: list[str] = field(default_factory=list)
    evaluation: list[dict] = field(default_factory=list)  # fmd.evaluate's rows in out/, when run

    def run(self, dataset: str, model: str) -> RunFacts:
        """The run of `model` on `dataset`."""
        return self.runs[(dataset, model)]

    @property
    def demo(self) -> bool | None:
        """True when every data root is demo data, None when no root was logged."""
        sources = {info['source'] for info in self.data.get('roots', {}).values()}
        return None if not sources else sources == {'demo'}

    @property
    def xception(self) -> RunFacts:
        """The Xception-based run of Chapter 3."""
        return self.run('synthetic_dataset', 'XceptionBased')

    @property
    def xception_random(self) -> bool:
        """True when Xception was logged as randomly initialised (no ImageNet weights)."""
        return self.xception.pretrained is False
