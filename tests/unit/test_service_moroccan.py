"""The Moroccan layer: script, Darija cues, langid fallback, declared languages, sample."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
sys.path.insert(0, str(SERVICE))

from eval_langid import read_sample  # noqa: E402
from tizi_service.model import load_identifier  # noqa: E402
from tizi_service.moroccan import MoroccanDetector, darija_cues, script_counts  # noqa: E402


@pytest.fixture(scope="module")
def detector() -> MoroccanDetector:
    return MoroccanDetector(load_identifier().identifier)


def test_script_counts_ignore_digits_and_punctuation() -> None:
    assert script_counts("ⴰⵣⵓⵍ, 123 !") == {"tifinagh": 4, "arabic": 0, "latin": 0}
    assert script_counts("واش 3la") == {"tifinagh": 0, "arabic": 3, "latin": 2}


@pytest.mark.parametrize(
    ("text", "language", "method"),
    [
        ("ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ", "zgh", "script"),
        ("salam, bghit njdd la carte dyali", "ary", "darija-cues"),
        ("3lach ma jitich lbare7?", "ary", "darija-cues"),
        ("واش السبيطار محلول نهار السبت؟", "ary", "darija-cues"),
        ("مافهمتش الملف", "ary", "darija-cues"),
        ("يرجى تقديم نسخة من بطاقة التعريف الوطنية عند إيداع الطلب.", "ar", "langid"),
        ("Le centre de santé est fermé le dimanche.", "fr", "langid"),
        ("Where is the nearest health centre?", "en", "langid"),
        ("La oficina abre a las nueve de la mañana.", "es", "langid"),
        ("12345 !!", "und", "empty"),
    ],
)
def test_detect(detector: MoroccanDetector, text: str, language: str, method: str) -> None:
    d = detector.detect(text)
    assert (d.language, d.method) == (language, method)
    assert 0.0 <= d.confidence <= 1.0


def test_detection_explains_itself(detector: MoroccanDetector) -> None:
    d = detector.detect("wach kayn chi tbib lyoum?")
    assert d.language == "ary"
    assert {"wach", "kayn", "lyoum"} <= set(d.cues)
    assert "ary" in d.scores


@pytest.mark.parametrize(
    "text",
    [
        "I had a match in March at the end of the fin.",  # English words that look like cues
        "Il est venu à la fin du mois pour le match.",
    ],
)
def test_no_darija_false_positive_on_lookalikes(detector: MoroccanDetector, text: str) -> None:
    assert detector.detect(text).language != "ary"
    assert darija_cues(text, "latin") == []


def test_declared_languages_must_be_answerable() -> None:
    with pytest.raises(ValueError, match="cannot answer"):
        MoroccanDetector(load_identifier().identifier, ("ar", "xx"))


def test_restricting_languages_restricts_answers() -> None:
    d = MoroccanDetector(load_identifier().identifier, ("ar", "fr"))
    assert d.detect("ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ").language in {"ar", "fr"}  # zgh not declared


def test_layer_beats_plain_langid_on_the_sample(detector: MoroccanDetector) -> None:
    """Regression guard for the figures in service/README.md."""
    rows = read_sample(SERVICE / "samples" / "langid-ma.tsv")
    plain = load_identifier().identifier
    layer_right = sum(detector.detect(t).language == label for label, _, t in rows)
    plain_right = sum(plain.classify(t)[0] == label for label, _, t in rows)
    assert len(rows) >= 60
    assert layer_right / len(rows) >= 0.9
    assert plain_right / len(rows) < 0.5


def test_model_cache_volume_wins_over_the_baked_in_model(tmp_path, monkeypatch):
    from tizi_service.model import MODEL_FILE, model_directory

    baked, cache = tmp_path / "baked", tmp_path / "cache"
    baked.mkdir()
    cache.mkdir()
    monkeypatch.setenv("TIZI_MODEL_DIR", str(baked))
    monkeypatch.setenv("TIZI_MODEL_CACHE_DIR", str(cache))
    assert model_directory() == baked, "an empty cache volume falls back to the image's model"
    (cache / MODEL_FILE).write_bytes(b"weights")
    assert model_directory() == cache
    assert model_directory(str(baked)) == cache
