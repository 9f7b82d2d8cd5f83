"""The policy file and licence terms, on their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeldepot.errors import UsageError
from modeldepot.licences import licence_terms
from modeldepot.scan import Finding, Severity
from modeldepot.verify.policy import SafetyMeasure, load_advisories, load_policy


def test_licence_families_and_obligations() -> None:
    llama = licence_terms("llama3.1")
    assert llama.family == "llama" and llama.commercial_use is True
    assert llama.user_cap == 700_000_000 and llama.use_policy_flows_down
    assert licence_terms("CC-BY-NC-4.0").commercial_use is False
    assert licence_terms("apache 2.0").family == "permissive"  # normalised spelling
    assert licence_terms("gemma").use_policy_flows_down
    unknown = licence_terms("acme-eula")
    assert unknown.commercial_use is None and "not recognised" in unknown.notes
    assert "commercial use not established" in unknown.obligations()


def test_policy_rules(tmp_path: Path) -> None:
    assert load_policy(tmp_path).block_at == Severity.HIGH  # defaults without a file
    (tmp_path / "policy.toml").write_text(
        '[licences]\nallow = ["llama", "Apache-2.0"]\nrequire_commercial_use = true\n'
        '[scan]\nblock = "medium"\n[formats]\nallow = ["gguf"]\n'
    )
    policy = load_policy(tmp_path)
    medium = Finding("f", "numpy.object-array", Severity.MEDIUM, "object array")
    kwargs = {"fmt": "gguf", "signed_by_trusted": False}
    assert policy.violations(licence="llama3.2", findings=[], **kwargs) == []  # by family
    assert policy.violations(licence="Apache-2.0", findings=[medium], **kwargs)[0].startswith(
        "scan: medium numpy.object-array"
    )
    refused = policy.violations(licence="CC-BY-NC-4.0", findings=[], **kwargs)
    assert any("not in the allowed" in r for r in refused)
    assert any("commercial use" in r for r in refused)
    assert (
        policy.violations(licence="MIT", fmt="onnx", findings=[], signed_by_trusted=True)[-1]
        == "format: onnx is not an allowed format"
    )


@pytest.mark.parametrize(
    "text",
    ["[scan]\nblock = 'severe'\n", "[licences]\nallow = 'MIT'\n", "[surprise]\n", "not toml ["],
)
def test_malformed_policy_is_a_usage_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "policy.toml").write_text(text)
    with pytest.raises(UsageError):
        load_policy(tmp_path)


def test_advisories_need_a_full_digest(tmp_path: Path) -> None:
    (tmp_path / "advisories.toml").write_text('[[advisory]]\ndigest = "sha256:abc"\n')
    with pytest.raises(UsageError, match="sha256"):
        load_advisories(tmp_path)


def test_safety_section_refuses_by_probe(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(
        '[safety]\nmax_attack_success = {dan = 0.3, "encoding.InjectBase64" = 0.5}\n'
        "require_redteam = true\n"
    )
    policy = load_policy(tmp_path)
    assert policy.judges_safety
    assert policy.max_attack_success == (("dan", 0.3), ("encoding.InjectBase64", 0.5))
    kwargs = {"licence": "MIT", "fmt": "gguf", "findings": [], "signed_by_trusted": False}
    assert policy.violations(**kwargs, safety={}) == [
        "safety: no red-team run recorded, and the policy requires one (depot redteam)"
    ]
    measured = {"dan": SafetyMeasure(0.4, 10), "encoding.InjectBase64": SafetyMeasure(0.5, 8)}
    assert policy.violations(**kwargs, safety=measured) == [
        "safety: probe dan is over the policy's attack success limit 0.3"
    ]  # 0.5 is allowed
    assert policy.violations(**kwargs, safety={"dan": SafetyMeasure(0.1, 10)}) == [
        "safety: probe encoding.InjectBase64 was not run, and the policy limits it"
    ]
    assert policy.violations(**kwargs, safety=None) == []  # not judged (an evaluation's server)
    (tmp_path / "policy.toml").write_text("[safety]\nmax_attack_success = {dan = 0.3}\n")
    lenient = load_policy(tmp_path)
    assert lenient.violations(**kwargs, safety={}) == []  # unmeasured is no reason by itself


@pytest.mark.parametrize("text", [
    "[safety]\nmax_attack_success = {dan = 1.5}\n",
    "[safety]\nmax_attack_success = {dan = true}\n",
    '[safety]\nmax_attack_success = {"dan; rm" = 0.1}\n',
    "[safety]\nmax_attack_success = 0.3\n",
    '[safety]\nrequire_redteam = "yes"\n',
    "[safety]\nmax_attack = {dan = 0.1}\n",
])  # fmt: skip
def test_malformed_safety_section_is_a_usage_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "policy.toml").write_text(text)
    with pytest.raises(UsageError, match=r"\[safety\]"):
        load_policy(tmp_path)
