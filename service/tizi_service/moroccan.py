"""A Moroccan-aware layer over langid: Tifinagh, Darija (both scripts), MSA, French, English...

langid was trained on European-heavy web text: it reads Tifinagh Amazigh as Malayalam and
Latin-script Darija ("Arabizi") as Spanish or French, and has no label for Darija at all.
This layer decides from evidence langid cannot see, in order:

1. script: letters in the Tifinagh block (U+2D30-U+2D7F) dominate -> `zgh`;
2. Darija cues: Darija function words (Arabic or Latin script), the negation circumfix
   ma-...-ch, and Arabizi digits for Arabic sounds (3=ع, 7=ح, 9=ق, 2=ء, 5=خ) inside words
   -> `ary`;
3. otherwise langid, restricted to the languages the service declares (default ar, fr, en,
   es), so Arabic-script text without Darija cues is `ar` (MSA).

The cue lists are hand-written, small and explainable: each detection returns the cues it
matched. They are a heuristic, not a trained model; see service/README.md for measured
accuracy and its limits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from langid.langid import LanguageIdentifier


def _words(text: str) -> frozenset[str]:
    """A word list from a readable block of text ("_" joins multi-word entries)."""
    return frozenset(w.replace("_", " ") for w in text.split())


DEFAULT_LANGUAGES = ("zgh", "ary", "ar", "fr", "en", "es")
LAYER_ONLY = frozenset({"zgh", "ary"})  # labels langid does not have

# Darija function and very frequent words, Arabic script. MSA shares many words with Darija;
# only words that are rare or absent in MSA are listed.
DARIJA_ARABIC = _words(
    """
    ديال ديالي ديالك ديالو ديالها ديالنا ديالكم ديالهم ديل بغيت بغينا كنبغي كتبغي بغا بغات
    واش شنو شني شنوا علاش فين فينا كيفاش كيداير كيدايرة دابا بزاف مزيان مزيانة واخا غادي غادين
    غانمشي راه راني راك راها هادشي هادي هاديك هداك داكشي ماشي خاصني خصني خاصك كاين كاينة
    كاينين عافاك لاباس صافي نتا نتي حنا نتوما ديما شوية شويا والو بلاصة فلوس دراري
    تاواحد حتى_حاجة مزال باغي باغية كنقلب كيقولو كنظن ليوم البارح كنسول عطيني شحال باش هاد
    """
)
# The same, Latin script (Arabizi). Words that are also common French, English or Spanish
# words ("fin", "had", "la", "ma", "rah" in names...) are deliberately absent.
DARIJA_LATIN = _words(
    """
    dyal dial dyali diali dyalek dialek dyalo dyalha dyalna dyalkom dyalhom bghit bghina
    kanbghi katbghi bgha wach wash chno chnou chnu shno chnowa 3lach 3lash alach kifach kifash
    kidayr kidayra daba bzaf bezzaf bzzaf mzyan mzian mezyan mzyana wakha wakhkha ghadi ghadin
    ghanmchi rani rak raha hadchi hadshi hadi hadik dakchi machi khassni khasni khassek kayn
    kayen kayna kaynin 3afak afak labas safi nta nti 7na hna ntouma dima chwiya chwia shwiya
    walo blasa flous flouss drari mazal baghi baghya kangoul kigoulo kandan lyoum lbareh smahli
    sm7li bslama m3a nchouf nchof nsawal ghir wlad bach 3la 3nd 3ndi kandir katdir kaydir
    kanmchi mchit jit jib l9it lqit 3tini atini chhal
    """
)
ARABIZI_DIGITS = re.compile(r"[a-z][2357-9]|[2357-9][a-z]")
NEGATION_LATIN = re.compile(r"^ma[a-z2-9']{2,}(ch|sh)$")
NEGATION_ARABIC = re.compile(r"^ما[\u0621-\u064a]{2,}ش$")
# ma-...-ch shaped words that are not Darija negations.
NEGATION_EXCEPTIONS = frozenset({"match", "march", "mach", "mash", "marsh", "mariach", "mallesh"})
TOKEN = re.compile(r"[\w']+", re.UNICODE)


def _script(ch: str) -> str | None:
    cp = ord(ch)
    if 0x2D30 <= cp <= 0x2D7F:
        return "tifinagh"
    if (
        0x0600 <= cp <= 0x06FF
        or 0x0750 <= cp <= 0x077F
        or 0x08A0 <= cp <= 0x08FF
        or 0xFB50 <= cp <= 0xFDFF
        or 0xFE70 <= cp <= 0xFEFF
    ):
        return "arabic" if ch.isalpha() else None
    if ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
        return "latin"
    return None


def script_counts(text: str) -> dict[str, int]:
    """Letters per script (Tifinagh, Arabic, Latin); digits, punctuation and others ignored."""
    counts = {"tifinagh": 0, "arabic": 0, "latin": 0}
    for ch in text:
        s = _script(ch)
        if s:
            counts[s] += 1
    return counts


def _arabic_variants(token: str) -> Iterable[str]:
    """The token and, for a leading wa-/fa-/bi- clitic, the token without it."""
    yield token
    for prefix in ("و", "ف", "ب"):  # wa-, fa-, bi- attached conjunctions and prepositions
        if token.startswith(prefix) and len(token) > 3:
            yield token[1:]


def _is_cue(token: str, script: str) -> bool:
    if script == "arabic":
        return any(t in DARIJA_ARABIC for t in _arabic_variants(token)) or bool(NEGATION_ARABIC.match(token))
    if token in DARIJA_LATIN:
        return True
    if token.isalnum() and not token.isdigit() and ARABIZI_DIGITS.search(token):
        return True
    return bool(NEGATION_LATIN.match(token)) and token not in NEGATION_EXCEPTIONS


def darija_cues(text: str, script: str) -> list[str]:
    """The Darija evidence found in text, one entry per matching token."""
    cues = [raw for raw in TOKEN.findall(text.lower()) if _is_cue(raw, script)]
    # Two-word Arabic-script cues ("حتى حاجة") are matched on the whole text.
    if script == "arabic":
        cues.extend(w for w in DARIJA_ARABIC if " " in w and w in text)
    return cues


@dataclass(frozen=True)
class Detection:
    """One answer, with the evidence behind it so callers (and auditors) can see why."""

    language: str
    confidence: float
    method: str  # "script", "darija-cues", "langid" or "empty"
    script: str | None
    cues: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)


class MoroccanDetector:
    """Language identification for Moroccan public services, on top of a langid model."""

    def __init__(self, identifier: LanguageIdentifier, languages: Iterable[str] = DEFAULT_LANGUAGES) -> None:
        self.languages = tuple(languages)
        known = set(identifier.nb_classes)
        unknown = [lang for lang in self.languages if lang not in known | LAYER_ONLY]
        if unknown:
            raise ValueError(f"the model cannot answer declared languages: {unknown}")
        self._langid_langs = [lang for lang in self.languages if lang not in LAYER_ONLY]
        identifier.set_languages(self._langid_langs or None)
        self.identifier = identifier

    def _ranked(self, text: str, top: int = 3) -> dict[str, float]:
        return {lang: round(p, 4) for lang, p in self.identifier.rank(text)[:top]}

    def detect(self, text: str) -> Detection:
        counts = script_counts(text)
        letters = sum(counts.values())
        if letters == 0:
            return Detection("und", 0.0, "empty", None)
        script = max(counts, key=lambda k: counts[k])
        share = counts[script] / letters
        if script == "tifinagh" and "zgh" in self.languages:
            return Detection("zgh", round(share, 4), "script", script, scores={"zgh": share})
        scores = self._ranked(text)
        if "ary" in self.languages and script in ("arabic", "latin"):
            cues = darija_cues(text, script)
            tokens = max(1, len(TOKEN.findall(text)))
            ratio = len(cues) / tokens
            # One cue in a short message, or two anywhere, or a tenth of the words.
            if cues and (len(cues) >= 2 or tokens <= 8 or ratio >= 0.1):
                confidence = round(min(0.99, 0.6 + 0.1 * len(cues) + ratio), 4)
                return Detection(
                    "ary", confidence, "darija-cues", script, tuple(cues), {"ary": confidence, **scores}
                )
        language, confidence = next(iter(scores.items()))
        return Detection(language, confidence, "langid", script, scores=scores)
