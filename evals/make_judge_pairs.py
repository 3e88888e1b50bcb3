"""Draw (answer sentence, passage) pairs from a real run, for hand-labelling the citation judge.

Input is the output of a real run, ``kb ask --batch evals/gold/dev.jsonl --json > answers.jsonl``.
Pairs are drawn, with a fixed seed, in five strata (the ``origin`` of each row):

- ``cited``: a sentence and the passage it cites (extractive sentences quote it, so these are
  mostly supported; they catch span and glueing bugs);
- ``retrieved-overlap``: a sentence and the passage retrieved for the same question, not cited
  by it, that shares the most content words with it (the hardest realistic mis-citation);
- ``retrieved-random``: the same with a random other retrieved passage;
- ``related-question``: a sentence and a passage cited for the most similar other question;
- ``joined``: two sentences of one answer citing different passages, joined, with the first
  one's passage (two claims, a passage that may support only one: partial support);
- ``cross-document``: a sentence holding a figure, and the passage retrieved for the same
  question from another document that shares the most content words with it (the documents
  restate each other's figures, so some of these are supported paraphrases, others near misses);
- ``cited-figure``: more ``cited`` pairs, drawn last, among sentences holding a number or year.

Nothing here looks at a judge: the labeller reads the pairs blind, then ``merge`` joins the labels
(TSV ``id<TAB>true|false<TAB>reason``) into ``evals/judge_labels.jsonl``::

    python -m evals.make_judge_pairs draw --answers answers.jsonl --out pairs.jsonl
    python -m evals.make_judge_pairs merge --pairs pairs.jsonl --labels labels.tsv \\
        --out evals/judge_labels.jsonl
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from kb.lexical import tokenize

# How many pairs each stratum contributes (about 140 in all).
QUOTAS = {
    "cited": 50, "retrieved-overlap": 35, "retrieved-random": 15,
    "related-question": 20, "joined": 20, "cross-document": 20, "cited-figure": 15,
}
_FIGURE = re.compile(r"\d")
_MARKER = re.compile(r"\s*\[\d+\]")


def _content(text: str) -> set[str]:
    return set(tokenize(text))


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a else 0.0


def _sentences(answer: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(sentence text, passages it cites) for each sentence of an answered question."""
    if answer.get("abstained"):
        return []
    by_n = {c["n"]: c for c in answer.get("citations", [])}
    out = []
    for s in answer.get("sentences", []):
        cited = [by_n[n] for n in s.get("citations", []) if n in by_n]
        text = _MARKER.sub("", s["text"]).strip()
        if cited and text:
            out.append((text, cited))
    return out


def _row(answer: Mapping[str, Any], sentence: str, passage: Mapping[str, Any],
         origin: str) -> dict[str, Any]:
    text = passage.get("passage", passage.get("text", ""))
    return {
        "question_id": str(answer["id"]), "sentence": sentence, "passage": text,
        "source": f"{passage.get('source', '')} {passage.get('section', '')}".strip(),
        "chunk_id": passage["chunk_id"], "origin": origin,
    }


def draw_pairs(answers: Sequence[Mapping[str, Any]], seed: int = 6,
               quotas: Mapping[str, int] = QUOTAS) -> list[dict[str, Any]]:
    """Unlabelled pairs from `answers` (``kb ask --json`` dicts), stratified by origin."""
    rng = random.Random(seed)
    answered = [a for a in answers if _sentences(a)]
    pools: dict[str, list[dict[str, Any]]] = {k: [] for k in quotas}
    question_words = {str(a["id"]): _content(str(a.get("question", ""))) for a in answered}
    for a in answered:
        sents = _sentences(a)
        # cited: every (sentence, cited passage) pair of the answer
        for text, cited in sents:
            for p in cited:
                pools["cited"].append(_row(a, text, p, "cited"))
                if _FIGURE.search(text):
                    pools["cited-figure"].append(_row(a, text, p, "cited-figure"))
        # retrieved: another passage retrieved for the same question, not cited by the sentence
        for text, cited in sents:
            cited_ids = {p["chunk_id"] for p in cited}
            others = [p for p in a.get("passages", []) if p["chunk_id"] not in cited_ids]
            if not others:
                continue
            words = _content(text)
            best = max(others, key=lambda p: _overlap(words, _content(p["text"])))
            pools["retrieved-overlap"].append(_row(a, text, best, "retrieved-overlap"))
            pools["retrieved-random"].append(
                _row(a, text, rng.choice(others), "retrieved-random"))
        # cross-document: a figure restated (or not) by another document's passage
        for text, cited in sents:
            docs = {p["doc_id"] for p in cited}
            others = [p for p in a.get("passages", []) if p["doc_id"] not in docs]
            if others and _FIGURE.search(text):
                words = _content(text)
                best = max(others, key=lambda p: _overlap(words, _content(p["text"])))
                pools["cross-document"].append(_row(a, text, best, "cross-document"))
        # joined: two sentences citing different passages, with the first one's passage
        for (t1, c1), (t2, c2) in zip(sents, sents[1:], strict=False):
            if {p["chunk_id"] for p in c1} & {p["chunk_id"] for p in c2}:
                continue
            pools["joined"].append(_row(a, f"{t1} {t2}", c1[0], "joined"))
    # related-question: the most similar other question's cited passages
    for a in answered:
        qid = str(a["id"])
        others = [b for b in answered if str(b["id"]) != qid]
        if not others:
            continue
        b = max(others, key=lambda o: _overlap(question_words[qid], question_words[str(o["id"])]))
        b_passages = list({p["chunk_id"]: p for _, c in _sentences(b) for p in c}.values())
        for text, _ in _sentences(a):
            words = _content(text)
            best = max(b_passages, key=lambda p: _overlap(words, _content(p["passage"])))
            row = _row(a, text, best, "related-question")
            row["related_question_id"] = str(b["id"])
            pools["related-question"].append(row)
    pairs: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for origin, quota in quotas.items():
        picked = _spread(pools[origin], quota, rng, seen)
        pairs.extend(picked)
    for i, row in enumerate(pairs, 1):
        row["id"] = f"j{i:03d}"
    return [{"id": r.pop("id"), **r} for r in pairs]


def _spread(pool: list[dict[str, Any]], quota: int, rng: random.Random,
            seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """Up to `quota` rows, one question at a time in random order (so every question, English
    or not, gets its turn before any gets a second), skipping pairs already drawn."""
    by_question: dict[str, list[dict[str, Any]]] = {}
    for row in pool:
        by_question.setdefault(row["question_id"], []).append(row)
    for rows in by_question.values():
        rng.shuffle(rows)
    order = sorted(by_question)
    rng.shuffle(order)
    picked: list[dict[str, Any]] = []
    while len(picked) < quota and any(by_question.values()):
        for qid in order:
            rows = by_question[qid]
            while rows:
                row = rows.pop()
                key = (row["sentence"], row["chunk_id"])
                if key not in seen:
                    seen.add(key)
                    picked.append(row)
                    break
            if len(picked) >= quota:
                break
    return picked


def merge_labels(pairs: Iterable[Mapping[str, Any]], labels: Mapping[str, tuple[bool, str]]
                 ) -> list[dict[str, Any]]:
    """The pairs that have a label, with ``label`` and ``reason`` set."""
    out = []
    for row in pairs:
        if row["id"] in labels:
            label, reason = labels[row["id"]]
            out.append({**row, "label": label, "reason": reason})
    return out


def read_label_tsv(path: Path) -> dict[str, tuple[bool, str]]:
    """``id<TAB>true|false<TAB>reason`` lines (``#`` comments and blank lines skipped)."""
    labels = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3 or parts[1].strip().lower() not in {"true", "false"}:
            raise click.ClickException(f"{path} line {n}: expected id<TAB>true|false<TAB>reason")
        labels[parts[0].strip()] = (parts[1].strip().lower() == "true", parts[2].strip())
    return labels


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _write_jsonl(rows: Iterable[Mapping[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


@click.group()
def main() -> None:
    """Draw pairs for the judge calibration set, then merge the hand labels."""


@main.command()
@click.option("--answers", type=click.Path(exists=True, path_type=Path), required=True,
              help="Output of kb ask --batch FILE --json.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=6, show_default=True)
def draw(answers: Path, out: Path, seed: int) -> None:
    """Write unlabelled pairs (no judge verdicts in them: label blind)."""
    pairs = draw_pairs(_read_jsonl(answers), seed=seed)
    _write_jsonl(pairs, out)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p["origin"]] = counts.get(p["origin"], 0) + 1
    click.echo(f"{len(pairs)} pairs -> {out}: {counts}")


@main.command()
@click.option("--pairs", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--labels", type=click.Path(exists=True, path_type=Path), required=True,
              help="TSV: id, true|false, reason.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
def merge(pairs: Path, labels: Path, out: Path) -> None:
    """Join hand labels into the labels JSONL (pairs without a label are left out)."""
    rows = merge_labels(_read_jsonl(pairs), read_label_tsv(labels))
    _write_jsonl(rows, out)
    click.echo(f"{len(rows)} labelled pairs ({sum(r['label'] for r in rows)} supported) -> {out}")


if __name__ == "__main__":
    main()
