"""Mirrors in the registry: added, changed, listed and removed, each change audited; names,
kinds, URLs and variable names checked before anything is recorded."""

from __future__ import annotations

import pytest

from modeldepot.depot import Depot
from modeldepot.errors import NotFound, UsageError
from modeldepot.registry.mirrors import Mirror


def test_mirrors_are_recorded_changed_and_removed(any_depot: Depot) -> None:
    store = any_depot.mirrors
    store.add(Mirror("hub", "hf", "https://huggingface.co/", "HF_TOKEN"))
    store.add(Mirror("corp", "depot", "http://depot.internal:8000"))
    assert [m.name for m in store.mirrors()] == ["corp", "hub"]
    assert store.mirror("hub") == Mirror("hub", "hf", "https://huggingface.co", "HF_TOKEN")
    changed = store.add(Mirror("hub", "hf", "http://127.0.0.1:9000/hf", on_demand=True))
    assert store.mirror("hub") == changed and changed.on_demand and changed.api_key_env is None
    store.remove("corp")
    assert [m.name for m in store.mirrors()] == ["hub"]
    with pytest.raises(NotFound, match="no mirror named 'corp'"):
        store.remove("corp")
    actions = [(e.action, e.subject) for e in any_depot.audit.events()]
    assert actions == [("mirror.add", "hub"), ("mirror.add", "corp"), ("mirror.add", "hub"),
                       ("mirror.remove", "corp")]  # fmt: skip


@pytest.mark.parametrize(
    ("mirror", "words"),
    [
        (Mirror("Hub", "hf", "https://huggingface.co"), "lowercase"),
        (Mirror("hub", "s3", "https://huggingface.co"), "one of hf, ollama, depot"),
        (Mirror("hub", "hf", "file:///etc"), r"http\(s\)://HOST"),
        (Mirror("hub", "hf", "https://huggingface.co/?x=1"), r"http\(s\)://HOST"),
        (
            Mirror("hub", "ollama", "https://registry.ollama.ai", "$(rm -rf /)"),
            "not an environment variable name",
        ),
    ],
)
def test_a_bad_mirror_is_refused_and_nothing_recorded(depot: Depot, mirror: Mirror,
                                                      words: str) -> None:  # fmt: skip
    with pytest.raises(UsageError, match=words):
        depot.mirrors.add(mirror)
    assert depot.mirrors.mirrors() == []
