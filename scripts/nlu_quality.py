"""Evaluate the trained model on the held-out NLU test set; fail below the thresholds.

Prints intent macro-F1 and entity F1 (micro average over entity types, as extracted by
the RegexEntityExtractor after overlap resolution), then the most frequent confusions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

INTENT_MACRO_F1 = 0.92
ENTITY_F1 = 0.85


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--test-data", required=True)
    parser.add_argument("--out", default="results/nlu")
    args = parser.parse_args()
    out = Path(args.out)
    print(f"==> NLU evaluation on the held-out set {args.test_data}")
    rasa = Path(sys.executable).with_name("rasa")
    done = subprocess.run(
        [str(rasa), "test", "nlu", "--model", args.model, "--nlu", args.test_data, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        print("rasa test nlu failed")
        return 1
    intents = json.loads((out / "intent_report.json").read_text())
    entity_reports = sorted(out.glob("*Extractor_report.json"))
    entities = json.loads(entity_reports[0].read_text()) if entity_reports else {}
    examples = sum(v["support"] for k, v in intents.items() if isinstance(v, dict) and "support" in v and not k.endswith("avg"))
    intent_f1 = intents["macro avg"]["f1-score"]
    entity_f1 = (entities.get("micro avg") or entities.get("weighted avg") or {}).get("f1-score", 0.0)
    print(f"test examples: {examples}")
    print(f"intent macro-F1: {intent_f1:.3f}  (threshold {INTENT_MACRO_F1})  accuracy {intents.get('accuracy', 0):.3f}")
    print(f"entity F1 (micro): {entity_f1:.3f}  (threshold {ENTITY_F1})")
    errors = json.loads((out / "intent_errors.json").read_text()) if (out / "intent_errors.json").exists() else []
    confusions = Counter((e["intent"], e["intent_prediction"]["name"]) for e in errors)
    for (truth, guess), count in confusions.most_common(8):
        print(f"  {count:3d} x {truth} -> {guess}")
    if intent_f1 < INTENT_MACRO_F1 or entity_f1 < ENTITY_F1:
        print("NLU quality: FAILED (below threshold)")
        return 1
    print("NLU quality: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
