"""Registry tables. Alembic migrations under `migrations/versions` create exactly these; a test
compares the two so they never drift apart.

    models    namespace/name                         (one row per repository)
    manifests one row per stored manifest digest      (an immutable version's content)
    versions  model x manifest                        (a model's history; a version is
                                                       addressable as name@sha256:...)
    tags      model:tag -> version                    (moved by `depot tag`)
    files     the layers of a manifest
    lineage   base model, adapter, dataset, quantised-from ... of a manifest
    events    who did what, when (hash-chained: an edited or deleted event is detected)
    usage     one row per answered API request (key, model, tokens, latency): not audit
              events, so serving never waits on the chain
    scans     scanner findings per manifest
    signatures  OpenSSF model-signing bundles (stored as blobs) per manifest
    cards     model cards (stored as blobs), generated or edited
    holds     a version quarantined by hand, or by `depot verify --all` for changed bytes, until
              released
    exceptions  a release of a version the policy refuses: who, why, until when, which
              reasons it waives, and the findings it was granted on
    evaluations  scores of a model (local version or remote) on a task, with per-item scores
    api_keys  keys of the HTTP API: scope, quotas (only a hash of each secret is kept)
    remotes   OpenAI-compatible models elsewhere (a proprietary API, another depot)
    aliases   a name served by the first of its targets that answers
    mirrors   upstream hubs models are pulled through (Hugging Face, Ollama, another depot)
    datasets  training data sets (stored as blobs), by digest
    jobs      long-running work (fine-tuning): its specification, status and progress
    api_files, batches
              OpenAI's Batch API: uploaded files (bytes as blobs) and batches run over them
    quota_requests, quota_reservations
              the requests of each key in the last minute, and the tokens reserved by its
              running requests: quotas every replica of the server shares
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "aliases",
    "api_files",
    "api_keys",
    "batches",
    "cards",
    "datasets",
    "evaluations",
    "events",
    "exceptions",
    "files",
    "holds",
    "jobs",
    "lineage",
    "manifests",
    "metadata",
    "mirrors",
    "models",
    "quota_requests",
    "quota_reservations",
    "remotes",
    "scans",
    "signatures",
    "tags",
    "transfer_grants",
    "ui_sessions",
    "usage",
    "versions",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_NOW = sa.DateTime(timezone=True)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", _NOW, nullable=False),
    sa.UniqueConstraint("namespace", "name"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(71), nullable=False, unique=True),
    sa.Column("config_digest", sa.String(71), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("architecture", sa.String(128)),
    sa.Column("parameters", sa.BigInteger),
    sa.Column("quantization", sa.String(32)),
    sa.Column("license", sa.String(128)),
    sa.Column("info", sa.JSON, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("created_at", _NOW, nullable=False),
    # "pending" until its files are scanned, then "scanned". Whether it may be served is never
    # stored: the gate (verify/gate.py) decides from its findings, signatures, holds and
    # exceptions under today's policy and advisories
    sa.Column("status", sa.String(16), nullable=False, server_default="scanned"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", _NOW, nullable=False),
    sa.UniqueConstraint("model_id", "manifest_id"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version_id", sa.ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("updated_at", _NOW, nullable=False),
    sa.UniqueConstraint("model_id", "name"),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("media_type", sa.String(128), nullable=False),
)

lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    sa.Column("relation", sa.String(32), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("target_digest", sa.String(71)),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", _NOW, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    # sha256 over the previous event's hash and this event's fields (see registry/audit.py)
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("hash", sa.String(64)),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", _NOW, nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("ttft_ms", sa.Float),
    sa.Index("ix_usage_key_at", "key", "at"),
)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("scanner_version", sa.String(16), nullable=False),
    sa.Column("findings", sa.JSON, nullable=False),
    sa.Column("scanned_at", _NOW, nullable=False),
)

signatures = sa.Table(
    "signatures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("identity", sa.Text, nullable=False),
    sa.Column("public_key", sa.Text),
    sa.Column("signed_at", _NOW, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # the version's manifest digest for a local model, `remote:NAME` for a remote one
    sa.Column("subject", sa.String(200), nullable=False, index=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("task", sa.String(128), nullable=False),
    sa.Column("task_version", sa.String(32), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("at", _NOW, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    # `capability` (what it can do) or `safety` (red-teaming, bias, refusals)
    sa.Column("kind", sa.String(16), nullable=False, server_default="capability", index=True),
)

cards = sa.Table(
    "cards",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("edited", sa.Boolean, nullable=False),
    sa.Column("at", _NOW, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    # "hand" (`depot quarantine hold`) or "integrity" (`depot verify --all`: changed bytes, a
    # signature that fails)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", _NOW, nullable=False),
    sa.Column("released_at", _NOW),
    sa.Column("released_by", sa.String(128)),
    sa.Column("release_reason", sa.Text),
)

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", _NOW, nullable=False),
    sa.Column("until", _NOW, nullable=False),
    # the policy's reasons it waives, word for word, and a sha256 over the findings of the scan
    # it was granted on: a later scan that finds anything else voids it
    sa.Column("covers", sa.JSON, nullable=False),
    sa.Column("findings", sa.String(64), nullable=False),
    sa.Column("revoked_at", _NOW),
    sa.Column("revoked_by", sa.String(128)),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("models", sa.Text, nullable=False),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpd", sa.BigInteger),
    sa.Column("private", sa.Boolean, nullable=False),
    sa.Column("created_at", _NOW, nullable=False),
    sa.Column("revoked_at", _NOW),
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
)

remotes = sa.Table(
    "remotes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("base_url", sa.Text, nullable=False),
    sa.Column("api_key_env", sa.String(128)),
    sa.Column("upstream_model", sa.String(256), nullable=False),
    sa.Column("created_at", _NOW, nullable=False),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("updated_at", _NOW, nullable=False),
)

mirrors = sa.Table(
    "mirrors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("api_key_env", sa.String(128)),
    sa.Column("on_demand", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", _NOW, nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("digest", sa.String(80), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("examples", sa.Integer, nullable=False),
    sa.Column("licence", sa.String(128)),
    sa.Column("created_at", _NOW, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("progress", sa.JSON, nullable=False),
    sa.Column("result", sa.String(256)),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(256)),
    sa.Column("pid", sa.Integer),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("created_at", _NOW, nullable=False),
    sa.Column("updated_at", _NOW, nullable=False),
)

quota_requests = sa.Table(
    "quota_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_quota_requests_key_at", "key", "at"),
)

quota_reservations = sa.Table(
    "quota_reservations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Index("ix_quota_reservations_key", "key"),
)

api_files = sa.Table(
    "api_files",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("filename", sa.String(256), nullable=False),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("input_file_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output_file_id", sa.String(40)),
    sa.Column("error_file_id", sa.String(40)),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("completed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("metadata", sa.JSON),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float),
)

ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Index("ix_ui_sessions_expires", "expires"),
)

transfer_grants = sa.Table(
    "transfer_grants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("blob", sa.String(71)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Index("ix_transfer_grants_expires", "expires"),
)
