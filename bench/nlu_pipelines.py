"""Compare candidate NLU pipelines on public benchmarks and on OneWindow's own held-out set.

For each pipeline: training time, parse time per message, and
  - CLINC150 (Larson et al. 2019): in-scope accuracy on the 4,500 in-scope test rows and
    out-of-scope recall on the 1,000 out-of-scope rows (predicted out_of_scope, or below the
    fallback threshold), trained on the full training set with out_of_scope as an intent;
  - OneWindow: intent macro-F1 on tests/nlu/test_nlu.yml, trained on nlu/.
The figures go to bench/results/nlu_pipelines.json and their summary to docs/results/nlu_pipelines.md.

    .venv/bin/python -m bench.nlu_pipelines [--only lr] [--clinc-limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from bench.summary import Table, write_summary

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "bench" / "results"
FALLBACK_THRESHOLD = 0.3

SPARSE: List[Dict[str, Any]] = [
    {"name": "WhitespaceTokenizer"},
    {"name": "RegexFeaturizer", "case_sensitive": False},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 2, "max_ngram": 5},
]
PIPELINES: Dict[str, List[Dict[str, Any]]] = {
    # OneWindow's choice (config.yml): TF-IDF word and character n-grams, logistic regression
    "text-lr": [
        {"name": "WhitespaceTokenizer"},
        {"name": "onewindow.rasa_plugins.intent_classifier.TextIntentClassifier", "C": 100},
    ],
    # the same model family built from Rasa's sparse features
    "rasa-lr": SPARSE
    + [{"name": "LogisticRegressionClassifier", "max_iter": 1000, "solver": "lbfgs", "class_weight": "balanced"}],
    # Rasa's default transformer classifier (the `rasa init` pipeline's intent part), fewer epochs
    "diet": SPARSE + [{"name": "DIETClassifier", "epochs": 30, "entity_recognition": False, "constrain_similarities": True}],
}


def write_config(folder: Path, pipeline: List[Dict]) -> Path:
    path = folder / "config.yml"
    config = {"recipe": "default.v1", "language": "en", "assistant_id": "bench", "pipeline": pipeline, "policies": []}
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, data: List[str], out: Path) -> Tuple[str, float]:
    from rasa.model_training import train_nlu

    started = time.perf_counter()
    model = train_nlu(str(config), data if len(data) > 1 else data[0], str(out), fixed_model_name="bench")
    return model, time.perf_counter() - started


def examples(path: Path, limit: int = 0) -> List[Tuple[str, str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    rows = [(m.get("text"), m.get("intent")) for m in load_data(str(path)).intent_examples]
    return rows[:limit] if limit else rows


def parse_all(model: str, rows: List[Tuple[str, str]]) -> Tuple[List[Tuple[str, str, float]], float]:
    from rasa.core.agent import Agent

    agent = Agent.load(model)

    async def go() -> List[Tuple[str, str, float]]:
        out = []
        for text, intent in rows:
            parsed = await agent.parse_message(text)
            out.append((intent, parsed["intent"]["name"], parsed["intent"]["confidence"]))
        return out

    started = time.perf_counter()
    predictions = asyncio.run(go())
    return predictions, (time.perf_counter() - started) / max(1, len(rows)) * 1000


def macro_f1(predictions: List[Tuple[str, str, float]]) -> float:
    labels = sorted({truth for truth, _, _ in predictions})
    scores = []
    for label in labels:
        tp = sum(1 for t, p, _ in predictions if t == label and p == label)
        fp = sum(1 for t, p, _ in predictions if t != label and p == label)
        fn = sum(1 for t, p, _ in predictions if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores)


def clinc(name: str, pipeline: List[Dict], folder: Path, limit: int) -> Dict:
    config = write_config(folder, pipeline)
    model, seconds = train(config, [str(DATASETS / "clinc150" / "train_nlu.yml")], folder / "clinc")
    rows = examples(DATASETS / "clinc150" / "test_nlu.yml")
    in_scope = [r for r in rows if r[1] != "out_of_scope"]
    oos = [r for r in rows if r[1] == "out_of_scope"]
    if limit:
        in_scope, oos = in_scope[:limit], oos[: max(1, limit // 4)]
    predictions, ms = parse_all(model, in_scope + oos)
    scoped = predictions[: len(in_scope)]
    outside = predictions[len(in_scope) :]
    accuracy = sum(1 for t, p, c in scoped if t == p and c >= FALLBACK_THRESHOLD) / len(scoped)
    recall = sum(1 for _, p, c in outside if p == "out_of_scope" or c < FALLBACK_THRESHOLD) / len(outside)
    return {
        "train_s": round(seconds, 1),
        "parse_ms": round(ms, 2),
        "in_scope_accuracy": round(accuracy, 3),
        "oos_recall": round(recall, 3),
    }


def own(name: str, pipeline: List[Dict], folder: Path) -> Dict:
    config = write_config(folder, pipeline)
    model, seconds = train(config, [str(ROOT / "nlu")], folder / "own")
    predictions, ms = parse_all(model, examples(ROOT / "tests" / "nlu" / "test_nlu.yml"))
    return {"train_s": round(seconds, 1), "parse_ms": round(ms, 2), "intent_macro_f1": round(macro_f1(predictions), 3)}


def main() -> int:
    import logging

    from rasa.utils.common import configure_logging_and_warnings

    configure_logging_and_warnings(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PIPELINES), action="append")
    parser.add_argument(
        "--skip-clinc", action="store_true", help="only OneWindow's own held-out set (minutes instead of an hour)"
    )
    parser.add_argument("--clinc-limit", type=int, default=0, help="evaluate on the first N in-scope rows only (quick look)")
    args = parser.parse_args()
    results: Dict[str, Dict[str, Any]] = {}
    for name in args.only or list(PIPELINES):
        with tempfile.TemporaryDirectory() as scratch:
            print(f"==> {name}", flush=True)
            results[name] = {"own": own(name, PIPELINES[name], Path(scratch))}
            print(json.dumps(results[name]), flush=True)
            if not args.skip_clinc:
                results[name]["clinc150"] = clinc(name, PIPELINES[name], Path(scratch), args.clinc_limit)
            print(json.dumps(results[name]), flush=True)
    rows = summary_rows(results)
    print(
        f"\n{'pipeline':<15} {'own macro-F1':>12} {'own parse ms':>12} {'CLINC in-scope':>14} {'CLINC OOS recall':>16} {'parse ms':>8} {'CLINC train s':>13}"
    )
    for row in rows:
        cells = ["-" if cell is None else cell for cell in row]
        print(f"{cells[0]:<15} {cells[1]:>12} {cells[2]:>12} {cells[3]:>14} {cells[4]:>16} {cells[5]:>8} {cells[6]:>13}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nlu_pipelines.json").write_text(
        json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2)
    )
    header = ["pipeline", "OneWindow held-out intent macro-F1", "OneWindow parse ms", "CLINC150 in-scope accuracy"]
    header += ["CLINC150 out-of-scope recall", "CLINC150 parse ms", "CLINC150 training s"]
    write_summary("nlu_pipelines", "Candidate NLU pipelines", [Table("Pipelines", header, rows)], RESULTS / "nlu_pipelines.json")
    return 0


def summary_rows(results: Dict[str, Dict]) -> List[List[object]]:
    """One row per pipeline: OneWindow's held-out set, then CLINC150 (None where it was skipped)."""
    rows: List[List[object]] = []
    for name, r in results.items():
        clinc150 = r.get("clinc150", {})
        scores = [clinc150.get(k) for k in ("in_scope_accuracy", "oos_recall", "parse_ms", "train_s")]
        rows.append([name, r["own"]["intent_macro_f1"], r["own"]["parse_ms"], *scores])
    return rows


if __name__ == "__main__":
    sys.exit(main())
