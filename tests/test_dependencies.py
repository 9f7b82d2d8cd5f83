"""The internals of other libraries the code reads, where a new release could move them: each
pinned below a version bound in pyproject.toml, and checked here so that an upgrade that breaks
one fails a named test instead of a scan or a model load."""

from __future__ import annotations

import importlib.metadata

from packaging.requirements import Requirement
from packaging.version import Version


def _bound(package: str) -> Requirement:
    requirements = importlib.metadata.requires("modeldepot") or []
    found = next(Requirement(r) for r in requirements if Requirement(r).name == package)
    assert any(s.operator in ("<", "==") for s in found.specifier), f"{package} has no bound"
    return found


def _installed_within(package: str) -> None:
    version = Version(importlib.metadata.version(package))
    assert version in _bound(package).specifier, f"{package} {version} outside its bound"


def test_llama_cpp_internals_used_by_the_scoring_engine() -> None:
    _installed_within("llama-cpp-python")
    from llama_cpp import _internals
    from llama_cpp._logger import set_verbose

    for name in ("LlamaModel", "LlamaContext", "LlamaBatch"):
        assert isinstance(getattr(_internals, name), type)
    assert callable(set_verbose)


def test_picklescans_danger_list_read_as_a_second_opinion() -> None:
    _installed_within("picklescan")
    from picklescan.scanner import _unsafe_globals

    assert isinstance(_unsafe_globals, dict) and "os" in _unsafe_globals


def test_gguf_type_tables_read_by_the_header_walker() -> None:
    _installed_within("gguf")
    import gguf

    assert {"UINT8", "STRING", "ARRAY", "FLOAT64"} <= {t.name for t in gguf.GGUFValueType}
    assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_1]


def test_jinja_syntax_tree_walked_by_the_template_scanner() -> None:
    _installed_within("jinja2")
    from jinja2 import nodes

    for name in ("Getattr", "Getitem", "Filter", "Name", "If", "Compare", "Call", "Test", "Const"):
        assert issubclass(getattr(nodes, name), nodes.Node)


def test_model_signing_configuration_api() -> None:
    _installed_within("model-signing")
    import model_signing

    assert callable(model_signing.signing.Config().use_elliptic_key_signer)
    assert callable(model_signing.verifying.Config().use_elliptic_key_verifier)
