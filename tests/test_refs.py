import pytest

from modeldepot.errors import InvalidReference
from modeldepot.refs import Reference, gives_version, parse_digest

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "namespace", "name", "tag", "digest"),
    [
        ("smollm2", "library", "smollm2", "latest", None),
        ("smollm2:135m-q4", "library", "smollm2", "135m-q4", None),
        ("acme/support-bot:v3", "acme", "support-bot", "v3", None),
        (f"smollm2@{DIGEST}", "library", "smollm2", None, DIGEST),
        (f"acme/bot:v1@{DIGEST}", "acme", "bot", "v1", DIGEST),
        ("gemma3:270m_Q4_K_M", "library", "gemma3", "270m_Q4_K_M", None),
    ],
)
def test_parse(text: str, namespace: str, name: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.namespace, ref.name, ref.tag, ref.digest) == (namespace, name, tag, digest)


def test_default_namespace_is_hidden_when_shown() -> None:
    assert str(Reference.parse("smollm2")) == "smollm2:latest"
    assert str(Reference.parse("library/smollm2:x")) == "smollm2:x"
    assert str(Reference.parse("acme/bot:v1")) == "acme/bot:v1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "required"),
        ("Smollm2", "lowercase"),
        ("a/b/c", "expected"),
        ("bad name", "may hold only"),
        ("name:-tag", "tag"),
        ("name:", "tag"),
        ("name@sha256:1234", "sha256 digest"),
        ("a--b", "may hold only"),
        ("x" * 65, "longer than 64"),
        ("/name", "namespace"),
    ],
)
def test_invalid_names_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        Reference.parse(text)


def test_parse_digest_accepts_bare_hex() -> None:
    assert parse_digest("ab" * 32) == DIGEST
    with pytest.raises(InvalidReference):
        parse_digest("sha256:XYZ")


def test_whether_a_name_says_which_version() -> None:
    """One answer for `depot rm NAME` (a tag left to default) and `rm --all-tags` (a name alone)."""
    for text in ("smollm2:q4", f"smollm2@{DIGEST}", "acme/bot:v3", f"acme/bot:v3@{DIGEST}"):
        assert gives_version(text), text
    for text in ("smollm2", "acme/bot", "acme/support-bot"):
        assert not gives_version(text), text
