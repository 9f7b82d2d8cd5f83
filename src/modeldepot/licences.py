"""Licence names as model files state them, normalised to SPDX where SPDX has them.

Model metadata writes licences loosely (`apache-2.0`, `Apache 2.0`, `gpl-2.0`, `Apache-2.0 OR
MIT`, `llama3.1`, `gemma`); the registry records one spelling so that search and policy can rely
on it. SPDX identifiers and expressions are normalised by `license-expression` (`gpl-2.0` ->
`GPL-2.0-only`, `mit and bsd-3-clause` -> `MIT AND BSD-3-Clause`). The hand table below is only
for model licences SPDX lacks (Llama, Gemma, Qwen, Falcon, the OpenRAIL family) and for loose
spellings; those keep the Hugging Face spelling, which is what model cards use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "MAX_LICENCE",
    "LicenceTerms",
    "licence_alternatives",
    "licence_from_text",
    "licence_terms",
    "normalize_licence",
]

_ALIASES = {
    "apache-2.0": "Apache-2.0",
    "apache2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "mit": "MIT",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cc0-1.0": "CC0-1.0",
    "openrail": "OpenRAIL",
    "openrail++": "OpenRAIL++",
    "creativeml-openrail-m": "CreativeML-OpenRAIL-M",
    "bigscience-openrail-m": "BigScience-OpenRAIL-M",
    "gemma": "gemma",
    "gemma terms of use": "gemma",
    "llama2": "llama2",
    "llama3": "llama3",
    "llama3.1": "llama3.1",
    "llama3.2": "llama3.2",
    "llama3.3": "llama3.3",
    "llama4": "llama4",
    "qwen": "qwen",
    "tongyi-qianwen": "qwen",
    "falcon-llm-license": "falcon",
    "other": "other",
}

MAX_LICENCE = 128
"""Longest licence recorded, in characters (the registry's column); a longer one is cut."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Phrases that identify a licence from the text of a LICENSE / terms file.
_TEXT_MARKERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"apache license\s*,?\s*version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"\bmit license\b|permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"gemma terms of use", re.I), "gemma"),
    (re.compile(r"llama 3\.3 community license", re.I), "llama3.3"),
    (re.compile(r"llama 3\.2 community license", re.I), "llama3.2"),
    (re.compile(r"llama 3\.1 community license", re.I), "llama3.1"),
    (re.compile(r"llama 3 community license", re.I), "llama3"),
    (re.compile(r"llama 2 community license", re.I), "llama2"),
    (re.compile(r"tongyi qianwen license|qwen license", re.I), "qwen"),
    (re.compile(r"attribution-noncommercial 4\.0", re.I), "CC-BY-NC-4.0"),
    (re.compile(r"openrail", re.I), "OpenRAIL"),
)


@cache
def _spdx() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def normalize_licence(raw: object) -> str | None:
    """`apache-2.0` -> `Apache-2.0`, `gpl-2.0` -> `GPL-2.0-only`, `apache-2.0 or mit` ->
    `Apache-2.0 OR MIT`; model licences keep their Hugging Face spelling; anything else a file
    states (`MIT<x>`, `see LICENSE`, a number) is kept as written, with control characters as
    spaces, whitespace collapsed and at most `MAX_LICENCE` characters: recorded as it is, and
    judged by the policy as a licence it does not know."""
    if raw is None:
        return None
    text = " ".join(_CONTROL.sub(" ", str(raw)).split())[:MAX_LICENCE].strip()
    return _normalized(text) if text else None


@cache
def _normalized(text: str) -> str:
    if text.lower() in _ALIASES:
        return _ALIASES[text.lower()]
    try:
        info = _spdx().validate(text)
    except Exception:  # license-expression fails on some malformed input (`MIT<x>`, `a AND`)
        return text
    if not info.errors and info.normalized_expression:
        return str(info.normalized_expression)
    return text


def licence_alternatives(licence: str | None) -> list[list[str]]:
    """A licence as the choices it offers: each inner list is a set of licences that must all
    be met (`A OR (B AND C)` -> [[A], [B, C]]). A plain name is one choice of one."""
    if not licence:
        return []
    if not re.search(r"\b(OR|AND|WITH)\b", licence):
        return [[licence]]
    try:
        parsed = _spdx().parse(licence, validate=False).simplify()
    except Exception:  # an unparsable expression: judged as one unknown licence
        return [[licence]]
    return [sorted(str(k) for k in _spdx().license_keys(term)) for term in _dnf(parsed)]


def _dnf(expression: Any) -> list[Any]:
    """The expression's alternatives (disjunctive normal form): ORs at the top."""
    name = type(expression).__name__
    if name == "OR":
        return [alt for arg in expression.args for alt in _dnf(arg)]
    if name == "AND":
        combos: list[list[Any]] = [[]]
        for arg in expression.args:
            combos = [[*c, alt] for c in combos for alt in _dnf(arg)]
        return [combo[0] if len(combo) == 1 else type(expression)(*combo) for combo in combos]
    return [expression]


def licence_from_text(text: str) -> str | None:
    """Recognise a licence from the opening of its full text, or None."""
    head = text[:20000]
    for pattern, licence in _TEXT_MARKERS:
        if pattern.search(head):
            return licence
    return None


@dataclass(frozen=True)
class LicenceTerms:
    """A licence's family and the obligations that matter when adopting a model."""

    family: str | None
    commercial_use: bool | None
    """True: allowed; False: forbidden; None: not known."""
    user_cap: int | None = None
    """Monthly active users above which a separate licence is needed."""
    use_policy_flows_down: bool = False
    """An acceptable-use policy binds every downstream user and must be passed on."""
    attribution: bool = False
    share_alike: bool = False
    notes: str = ""

    def obligations(self) -> list[str]:
        out = []
        if self.commercial_use is False:
            out.append("no commercial use")
        elif self.commercial_use is None:
            out.append("commercial use not established")
        if self.user_cap:
            out.append(f"separate licence above {self.user_cap:,} monthly active users")
        if self.use_policy_flows_down:
            out.append("acceptable-use policy flows down to every user")
        if self.attribution:
            out.append("attribution / notice required")
        if self.share_alike:
            out.append("derivatives under the same licence")
        return out


_PERMISSIVE = LicenceTerms("permissive", True, attribution=True)
_TERMS: dict[str, LicenceTerms] = {
    "Apache-2.0": _PERMISSIVE,
    "MIT": _PERMISSIVE,
    "BSD-3-Clause": _PERMISSIVE,
    "BSD-2-Clause": _PERMISSIVE,
    "CC0-1.0": LicenceTerms("public-domain", True),
    "CC-BY-4.0": LicenceTerms("creative-commons", True, attribution=True),
    "CC-BY-SA-4.0": LicenceTerms("creative-commons", True, attribution=True, share_alike=True),
    "CC-BY-NC-4.0": LicenceTerms("non-commercial", False, attribution=True),
    "CC-BY-NC-SA-4.0": LicenceTerms("non-commercial", False, attribution=True, share_alike=True),
    "GPL-3.0-only": LicenceTerms("copyleft", True, attribution=True, share_alike=True),
    "AGPL-3.0-only": LicenceTerms("copyleft", True, attribution=True, share_alike=True,
                                  notes="network use counts as distribution"),
    "OpenRAIL": LicenceTerms("openrail", True, use_policy_flows_down=True),
    "OpenRAIL++": LicenceTerms("openrail", True, use_policy_flows_down=True),
    "CreativeML-OpenRAIL-M": LicenceTerms("openrail", True, use_policy_flows_down=True),
    "BigScience-OpenRAIL-M": LicenceTerms("openrail", True, use_policy_flows_down=True),
    "llama2": LicenceTerms("llama", True, 700_000_000, True, True,
                           notes="may not be used to improve other large language models"),
    "gemma": LicenceTerms("gemma", True, None, True, True,
                          notes="Gemma Prohibited Use Policy; terms pass to redistributions"),
    "qwen": LicenceTerms("qwen", True, 100_000_000, True, True),
    "falcon": LicenceTerms("falcon", True, None, True, True),
}  # fmt: skip
for _version in ("llama3", "llama3.1", "llama3.2", "llama3.3", "llama4"):
    _TERMS[_version] = LicenceTerms("llama", True, 700_000_000, True, True,
                                    notes='display "Built with Llama"; names of derivatives '
                                    'start with "Llama"')  # fmt: skip


# SPDX licences by family, for those not listed in _TERMS: (identifier pattern, terms).
_SPDX_FAMILIES: tuple[tuple[re.Pattern[str], LicenceTerms], ...] = (
    (re.compile(r"^CC-BY(-SA)?-NC|^CC-BY-NC"), LicenceTerms("non-commercial", False,
                                                              attribution=True)),
    (re.compile(r"^CC-BY(-NC)?-ND"), LicenceTerms("no-derivatives", True, attribution=True,
                                                  notes="no derivatives (fine-tuning is one)")),
    (re.compile(r"^CC-BY-SA"), LicenceTerms("creative-commons", True, attribution=True,
                                            share_alike=True)),
    (re.compile(r"^CC-BY-\d"), LicenceTerms("creative-commons", True, attribution=True)),
    (re.compile(r"^(CC0|Unlicense|0BSD)"), LicenceTerms("public-domain", True)),
    (re.compile(r"^AGPL-"), LicenceTerms("copyleft", True, attribution=True, share_alike=True,
                                         notes="network use counts as distribution")),
    (re.compile(r"^GPL-"), LicenceTerms("copyleft", True, attribution=True, share_alike=True)),
    (re.compile(r"^(LGPL|MPL|EPL|CDDL)-"), LicenceTerms("weak-copyleft", True, attribution=True,
                                                       share_alike=True,
                                                       notes="changed files stay under it")),
    (re.compile(r"^(Apache|MIT|BSD|ISC|Zlib|PSF|Python|BSL|UPL|NCSA)"), _PERMISSIVE),
)  # fmt: skip


def _single_terms(licence: str) -> LicenceTerms:
    found = _TERMS.get(licence) or _TERMS.get(normalize_licence(licence) or "")
    if found:
        return found
    if licence in _spdx().known_symbols:  # a family by its prefix only for a real SPDX id:
        for pattern, terms in _SPDX_FAMILIES:  # `MIT<x>` or `MIT-ish` is not MIT's family
            if pattern.search(licence):
                return terms
    return LicenceTerms("other", None, notes=f"{licence}: terms not recognised")


def licence_terms(licence: str | None) -> LicenceTerms:
    """The terms of a licence as `normalize_licence` spells it; unknown ones say so. For an
    expression: the most favourable alternative (the user may choose), each alternative bound
    by all of its parts."""
    if licence is None:
        return LicenceTerms(None, None, notes="no licence recorded")
    choices = licence_alternatives(licence)
    if choices == [[licence]]:
        return _single_terms(licence)
    combined = [_combine([_single_terms(part) for part in choice]) for choice in choices]
    rank = {True: 0, None: 1, False: 2}
    return min(combined, key=lambda t: (rank[t.commercial_use], len(t.obligations())))


def _combine(parts: list[LicenceTerms]) -> LicenceTerms:
    """Terms that bind all of `parts` at once (an AND)."""
    if len(parts) == 1:
        return parts[0]
    uses = [p.commercial_use for p in parts]
    commercial = False if False in uses else (None if None in uses else True)
    caps = [p.user_cap for p in parts if p.user_cap]
    families = sorted({p.family or "other" for p in parts})
    return LicenceTerms(
        "+".join(families), commercial, min(caps) if caps else None,
        any(p.use_policy_flows_down for p in parts), any(p.attribution for p in parts),
        any(p.share_alike for p in parts), "; ".join(p.notes for p in parts if p.notes),
    )  # fmt: skip
