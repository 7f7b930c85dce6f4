"""Measure plain langid against tizi's Moroccan layer on the labelled sample.

    python service/eval_langid.py [--sample service/samples/langid-ma.tsv] [--errors]

Plain langid is scored as shipped (97 languages, no restriction): it has no label for Darija
(ary) or Amazigh (zgh), so those rows count as errors for it, which is the point: that is
what a router built on it would do to Moroccan users. The sample was written by the same
people as the cue lists, so the layer's figure is optimistic; treat it as a regression check.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tizi_service.model import load_identifier  # noqa: E402
from tizi_service.moroccan import MoroccanDetector  # noqa: E402


def read_sample(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, script, text = line.split("\t", 2)
            rows.append((f"{label}", script, text))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=HERE / "samples" / "langid-ma.tsv")
    parser.add_argument("--errors", action="store_true", help="list misclassified rows")
    args = parser.parse_args()
    rows = read_sample(args.sample)

    plain = load_identifier().identifier  # unrestricted, as langid ships
    layer = MoroccanDetector(load_identifier().identifier)

    total = defaultdict(int)
    right_plain = defaultdict(int)
    right_layer = defaultdict(int)
    errors = []
    for label, script, text in rows:
        key = f"{label}-{script}" if label == "ary" else label
        total[key] += 1
        p = plain.classify(text)[0]
        d = layer.detect(text)
        right_plain[key] += p == label
        right_layer[key] += d.language == label
        if p != label or d.language != label:
            errors.append((label, script, p, d.language, d.method, text))

    print(f"{'label':<10}{'n':>4}{'langid':>10}{'tizi layer':>12}")
    for key in sorted(total):
        n = total[key]
        print(f"{key:<10}{n:>4}{right_plain[key] / n:>10.0%}{right_layer[key] / n:>12.0%}")
    n = sum(total.values())
    print(f"{'all':<10}{n:>4}{sum(right_plain.values()) / n:>10.1%}{sum(right_layer.values()) / n:>12.1%}")
    if args.errors:
        print("\nrows either got wrong (label script | langid | layer (method) | text):")
        for label, script, p, lang, method, text in errors:
            print(f"  {label} {script} | {p} | {lang} ({method}) | {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
