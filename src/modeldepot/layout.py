"""What lives under DEPOT_HOME, named in this one place.

    DEPOT_HOME/
      blobs/sha256-<hex>       every stored file once, by digest (the local blob store)
      tmp/<pid>-<random>.partial   blobs being written
      checked/sha256-<hex>     when each blob file was last found to match its digest
      cache/blobs/             an object store's blobs, cached for engines and scanners
      cache/<engine>/          an engine's own caches (vLLM's, torch's compiled kernels)
      run/<digest prefix>/     a version's files under their own names (links to blobs)
      logs/                    engine logs
      jobs/<id>/               fine-tuning work folders
      work/<prefix><random>/   scratch of work in progress (a conversion, a merge, a mirror's
                               download, signing), removed when it ends
      keys/depot               the depot's signing key (and keys/depot.pub)
      audit/checkpoints.jsonl  anchors of the audit chain
      registry.db              the registry (SQLite; unless DEPOT_DATABASE_URL names another)
      registry.lock            migrations of the registry, one process at a time
      store.lock               the store lock (imports shared, gc exclusive)
      eval-cache.db            evaluation responses
      redteam/<run>/           a `depot redteam` run: garak's configuration, report, hit log
      serve.json               a running `depot serve` announces itself here
      ui-secret                the web UI's session-signing secret
      run_history              `depot run`'s line history
      policy.toml              the policy (optional)
      advisories.toml          known-bad digests (optional)

Every module asks `Layout` (usually `settings.layout`) for these paths instead of joining
names to the home itself. Paths under a model's own folder (its files' relative paths) come
from outside and are checked by `modeldepot.paths` first.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    root: Path
    """DEPOT_HOME."""

    # -- the store -------------------------------------------------------------------------

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def checked(self) -> Path:
        return self.root / "checked"

    @property
    def blob_cache(self) -> Path:
        return self.root / "cache" / "blobs"

    def engine_cache(self, name: str) -> Path:
        """An engine's own cache folder (`name`: one of the depot's fixed names)."""
        return self.root / "cache" / name

    @property
    def run(self) -> Path:
        return self.root / "run"

    def run_folder(self, digest: str) -> Path:
        """Where a version (by manifest digest) is laid out under its files' own names."""
        return self.run / digest.removeprefix("sha256:")[:16]

    @property
    def store_lock(self) -> Path:
        return self.root / "store.lock"

    # -- the registry and its companions ---------------------------------------------------

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.db"

    @property
    def lock_dir(self) -> Path:
        """Where `registry.lock` (migrations) is taken."""
        return self.root

    @property
    def audit_checkpoints(self) -> Path:
        return self.root / "audit" / "checkpoints.jsonl"

    @property
    def signing_key(self) -> Path:
        return self.root / "keys" / "depot"

    @property
    def public_key(self) -> Path:
        """The public half of `signing_key`."""
        return self.root / "keys" / "depot.pub"

    @property
    def policy(self) -> Path:
        return self.root / "policy.toml"

    @property
    def advisories(self) -> Path:
        return self.root / "advisories.toml"

    def named(self, path: str) -> Path:
        """A file the user's own settings name (a trusted key in policy.toml): as given when
        absolute, else relative to the home."""
        return self.root / path

    # -- serving, evaluating, customising --------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def announcement(self) -> Path:
        return self.root / "serve.json"

    @property
    def ui_secret(self) -> Path:
        return self.root / "ui-secret"

    @property
    def run_history(self) -> Path:
        return self.root / "run_history"

    @property
    def eval_cache(self) -> Path:
        return self.root / "eval-cache.db"

    @property
    def redteam(self) -> Path:
        return self.root / "redteam"

    def redteam_run(self, run_id: str) -> Path:
        """The folder of one `depot redteam` run (`run_id` is the depot's own)."""
        return self.redteam / run_id

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    def job(self, job_id: str) -> Path:
        return self.jobs / job_id

    @property
    def work(self) -> Path:
        return self.root / "work"

    def scratch(self, prefix: str = "tmp") -> tempfile.TemporaryDirectory[str]:
        """A folder for work in progress under `work/`, removed when done: on the home's
        filesystem, so what it produces moves into the store without a copy."""
        self.work.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=prefix, dir=self.work)
