"""Which languages does the served model answer in? A crude, honest report per declared language.

Sends every prompt of ``bench/samples/language_prompts.tsv`` (six everyday requests a citizen
would send, in Standard Arabic, Darija in Arabic script and in Latin script (Arabizi), Standard
Moroccan Amazigh in Tifinagh, French, and English as the control) through the official
``openai`` client, temperature 0, ``max_tokens`` 48, and prints each answer (truncated) and,
per language, the share of answers

- in the prompt's script (letters counted by Unicode range: Arabic, Tifinagh U+2D30-U+2D7F,
  Latin), and in the prompt's language: for the Latin script a tiny stopword count tells
  English, French and Arabizi apart (Arabizi: Darija words and digits used as letters, 3 7 9);
  in the Arabic script it does NOT tell Standard Arabic from Darija (the script is counted);
- that are empty or repeat the prompt.

It is a crude proxy for "the model answers a citizen in the citizen's language", not a
quality measure: an answer in the right script can still be wrong or meaningless.

The deployment: ``TIZI_CONFORMANCE_URL``, ``TIZI_CONFORMANCE_KEY`` and
``TIZI_CONFORMANCE_MODEL`` as for the conformance suite; without them, a bare
``python -m llama_cpp.server`` with SmolLM2-135M-Instruct that this script starts and stops
itself (as ``bench/bench_llm.py`` does; the venv is made offline from the wheel cache).

    .venv/bin/python bench/language_report.py [--max-tokens 48] [--json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import difflib
import itertools
import json
import os
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from tests.conformance.contract import Target  # noqa: E402

SAMPLES = HERE / "samples" / "language_prompts.tsv"
NAMES = {
    "ar-Arab": "Standard Arabic",
    "ary-Arab": "Darija, Arabic script",
    "ary-Latn": "Darija, Latin script (Arabizi)",
    "zgh-Tfng": "Amazigh (Tifinagh)",
    "fr-Latn": "French",
    "en-Latn": "English (control)",
}

# tiny stopword lists: enough to tell which of the three a Latin-script answer leans to
EN_WORDS = """the and to of a an is are you your in for it that can with be on this i will or need have
should at if by from my we they what how do does which there"""
FR_WORDS = """le la les de des du et est un une pour vous votre vos en à au aux que qui dans pas sur avec je
il ce être sont par ou se faut y peut cette ces nous"""
ARY_WORDS = """dyal dial dyali dyalek dyalk wach bghit chno chnou ach kifach kifash fin ch7al chhal daba
khassni khass khassek bach mn ana nta nti howa hiya homa li lli had hadi hada ila wla ghadi kayn kayna mzyan
3afak m3a m3ak m3aya bzaf walakin 3la 3nd 3ndk ntaa nakhod ntleb n9der nmchi lwra9 weldi salam"""
STOPWORDS = {"en": set(EN_WORDS.split()), "fr": set(FR_WORDS.split()), "ary": set(ARY_WORDS.split())}
ARABIZI_DIGITS = re.compile(r"[a-z][2379]|[2379][a-z]", re.IGNORECASE)


OTHER_SCRIPTS = {"HEBREW": "Hebr", "CYRILLIC": "Cyrl", "GREEK": "Grek", "CJK": "Hani", "DEVANAGARI": "Deva"}


def script_of(char: str) -> str | None:
    """Arab, Tfng, Latn (or Hebr, Cyrl, ..., Other) for a letter; None for anything else.
    Unassigned code points of the Tifinagh block count as Tifinagh (the model emits them)."""
    code = ord(char)
    if 0x2D30 <= code <= 0x2D7F:
        return "Tfng"
    if not unicodedata.category(char).startswith("L"):
        return None
    if (
        0x0600 <= code <= 0x06FF
        or 0x0750 <= code <= 0x077F
        or 0x08A0 <= code <= 0x08FF
        or 0xFB50 <= code <= 0xFDFF
        or 0xFE70 <= code <= 0xFEFF
    ):
        return "Arab"
    name = unicodedata.name(char, "").split(" ")[0]
    if name == "LATIN":
        return "Latn"
    return OTHER_SCRIPTS.get(name, "Other")


def dominant_script(text: str) -> tuple[str, float]:
    """The script of most letters and its share; ("none", 0) without letters."""
    counts = collections.Counter(s for s in map(script_of, text) if s)
    if not counts:
        return "none", 0.0
    script, n = counts.most_common(1)[0]
    return script, n / sum(counts.values())


def latin_language(text: str) -> str:
    """en, fr or ary (Arabizi) by stopword hits; "?" when nothing tips the balance."""
    words = re.findall(r"[^\W_]+", text.lower())
    hits = {lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()}
    hits["ary"] += len(ARABIZI_DIGITS.findall(text))
    best = max(hits.values())
    leaders = [lang for lang, n in hits.items() if n == best]
    return leaders[0] if best > 0 and len(leaders) == 1 else "?"


def detected(text: str) -> str:
    """A tag like those of the samples: ``Arab`` (Standard Arabic or Darija, not told apart),
    ``Tfng``, ``en-Latn``, ``fr-Latn``, ``ary-Latn``, ``?-Latn``, ``none``, ``Other``."""
    script, _ = dominant_script(text)
    if script == "Latn":
        return f"{latin_language(text)}-Latn"
    return script


def normalised(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold())


def empty_or_echo(prompt: str, answer: str) -> str | None:
    """ "empty" (no letter), "echo" (the answer repeats the prompt, or starts with it nearly word
    for word: a word-sequence similarity of at least 0.7 over the prompt's length), or None."""
    a, p = normalised(answer), normalised(prompt)
    if not any(c.isalpha() for c in a):
        return "empty"
    prompt_words = words(prompt)
    head = words(answer)[: len(prompt_words)]
    if p in a or difflib.SequenceMatcher(None, prompt_words, head).ratio() >= 0.7:
        return "echo"
    return None


def chart_walk(answer: str, run: int = 6) -> bool:
    """Noise dressed as a script: unassigned code points, or ``run`` letters in a row each one or
    two code points after the previous one (the model walking down the Unicode chart)."""
    if any(unicodedata.category(c) == "Cn" for c in answer):
        return True
    steps = 0
    for before, after in itertools.pairwise(answer):
        steps = steps + 1 if 1 <= ord(after) - ord(before) <= 2 and after.isalpha() else 0
        if steps >= run - 1:
            return True
    return False


def score(sample: dict[str, str], answer: str) -> dict[str, object]:
    """The checks of one answer; ``plausible``: in the prompt's language (proxy), not empty, not
    an echo of the prompt, not chart noise. Still no judgement of content."""
    found = detected(answer)
    same_script, same_language = matches(sample["expected-language"], found)
    echo, noise = empty_or_echo(sample["prompt"], answer), chart_walk(answer)
    return {
        "detected": found,
        "same_script": same_script,
        "same_language": same_language,
        "empty_or_echo": echo,
        "chart_noise": noise,
        "plausible": same_language and not echo and not noise,
    }


def matches(expected: str, found: str) -> tuple[bool, bool]:
    """(same script, same language as far as the proxy can tell)."""
    script = expected.split("-")[1]
    same_script = found == script or found.endswith(f"-{script}")
    if script == "Latn":
        return same_script, found == expected
    return same_script, same_script  # Arabic script: ar and ary are not told apart


def read_samples(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def report(target: Target, samples: list[dict[str, str]], max_tokens: int) -> list[dict[str, object]]:
    client = target.client(timeout=300)
    rows = []
    for sample in samples:
        completion = client.chat.completions.create(
            model=target.model,
            messages=[{"role": "user", "content": sample["prompt"]}],
            temperature=0,
            max_tokens=max_tokens,
        )
        answer = completion.choices[0].message.content or ""
        finish = completion.choices[0].finish_reason
        rows.append({**sample, "answer": answer, "finish_reason": finish, **score(sample, answer)})
    return rows


def summary(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for tag in dict.fromkeys(str(r["expected-language"]) for r in rows):
        mine = [r for r in rows if r["expected-language"] == tag]
        n = len(mine)
        out[tag] = {
            "name": NAMES.get(tag, tag),
            "prompts": n,
            "same_script": sum(bool(r["same_script"]) for r in mine) / n,
            "same_language": sum(bool(r["same_language"]) for r in mine) / n,
            "empty_or_echo": sum(bool(r["empty_or_echo"]) for r in mine) / n,
            "chart_noise": sum(bool(r["chart_noise"]) for r in mine) / n,
            "plausible": sum(bool(r["plausible"]) for r in mine) / n,
            "answered_in": dict(collections.Counter(str(r["detected"]) for r in mine).most_common()),
        }
    return out


def print_report(target: Target, rows: list[dict[str, object]], scores: dict, max_tokens: int) -> None:
    where = f"{target.name} {target.base_url} model {target.model}"
    print(f"target: {where}; temperature 0, max_tokens {max_tokens}")
    print()
    for r in rows:
        mark = "same" if r["same_language"] else ("script only" if r["same_script"] else "OTHER")
        flags = [str(r["empty_or_echo"])] if r["empty_or_echo"] else []
        flags += ["chart noise"] if r["chart_noise"] else []
        flag = f" [{', '.join(flags)}]" if flags else ""
        print(f"{r['expected-language']:<9} {one_line(str(r['prompt']), 48)}")
        print(f"  -> {one_line(str(r['answer']), 110)}")
        print(f"     answered in {r['detected']} ({mark}){flag}")
    print()
    columns = ("same script", "same lang.*", "empty/echo", "noise", "plausible**")
    print(f"{'language':<44}{'n':>3}" + "".join(f"{c:>13}" for c in columns) + "  answered in")
    for tag, s in scores.items():
        answered = ", ".join(f"{k} {v}" for k, v in s["answered_in"].items())
        shares = (s["same_script"], s["same_language"], s["empty_or_echo"], s["chart_noise"], s["plausible"])
        label = f"{s['name']} ({tag})"
        print(f"{label:<44}{s['prompts']:>3}" + "".join(f"{v:>13.0%}" for v in shares) + f"  {answered}")
    print()
    print(
        "*  a CRUDE PROXY: script by Unicode ranges (Arabic, Tifinagh U+2D30-U+2D7F, Latin); in Latin\n"
        "   script a tiny stopword count for en / fr / Arabizi; in Arabic script Standard Arabic and\n"
        "   Darija are NOT told apart (the script is all that is checked).\n"
        "** same language*, not empty, not an echo of the prompt, not noise (unassigned code points or\n"
        "   runs of consecutive code points). None of this says an answer is correct, useful or safe."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    samples = read_samples(args.samples)
    with contextlib.ExitStack() as stack:
        url = os.environ.get("TIZI_CONFORMANCE_URL")
        if url:
            target = Target(
                "given",
                url.rstrip("/"),
                os.environ["TIZI_CONFORMANCE_KEY"],
                os.environ.get("TIZI_CONFORMANCE_MODEL", "smollm2-135m-instruct"),
                "llm",
            )
        else:
            from bench_llm import host_server

            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tizi-language-")))
            target = stack.enter_context(host_server(root, "bare")).target
        rows = report(target, samples, args.max_tokens)
    scores = summary(rows)
    if args.json:
        print(
            json.dumps(
                {
                    "target": target.base_url,
                    "model": target.model,
                    "max_tokens": args.max_tokens,
                    "scores": scores,
                    "answers": rows,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print_report(target, rows, scores, args.max_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
