"""One running engine: a process started from an engine's `Launch`, serving HTTP on a private
loopback port, driven the way Ollama drives its runner. Running each model in its own process
means a crash or an out-of-memory kills that model only, and unloading frees all its memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modeldepot.config import child_environment
from modeldepot.errors import DepotError
from modeldepot.runtime.engine import EngineSpec, Launch

__all__ = ["EngineProcess", "ModelUnavailable", "engine_client_limits", "free_port"]

log = logging.getLogger("modeldepot.runtime")


class ModelUnavailable(DepotError):
    """The model's engine could not be started or stopped answering (HTTP 503)."""

    http_status = 503


def engine_client_limits() -> httpx.Limits:
    """Connections to an engine are not kept alive: llama.cpp's HTTP server may close an idle
    one just as a client reuses it, which fails that request; a new loopback connection per
    request costs far less than a token."""
    return httpx.Limits(max_keepalive_connections=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EngineProcess:
    spec: EngineSpec
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    active: int = 0
    stop_grace: float = 5.0
    keep_alive: float | None = None
    """Seconds to stay loaded once idle, as the last request asked (None: the pool's)."""

    @classmethod
    def start(
        cls, spec: EngineSpec, launch: Launch, port: int, log_dir: Path,
        timeout: float | None = None,
    ) -> EngineProcess:  # fmt: skip
        """Start the engine and wait until it answers `GET /health` (`timeout`: the launch's
        own start time by default)."""
        command = list(launch.argv)
        chrt = shutil.which("chrt")
        if chrt:  # the normal policy, whatever the server's thread runs under
            command = [chrt, "--other", "0", *command]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # The engine ends with the process that started it, even one killed. The signal
            # follows the starting thread: engines start from the main thread or the event
            # loop's executor, whose threads live as long as the loop.
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        environment = child_environment(**launch.environment) if launch.environment else None
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{spec.digest.removeprefix('sha256:')[:16]}-{spec.kind}.log"
        with open(log_path, "ab") as output:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
            )
        running = cls(spec, process, f"http://127.0.0.1:{port}", log_path,
                      stop_grace=launch.stop_grace)  # fmt: skip
        log.info("starting the %s engine (%s) for %s %s: pid %d, port %d", spec.engine,
                 spec.kind, spec.name, spec.digest, process.pid, port)  # fmt: skip
        running._wait_ready(launch.start_timeout if timeout is None else timeout)
        log.info("engine pid %d ready for %s in %.1f s", process.pid, spec.name,
                 time.monotonic() - running.started_at)  # fmt: skip
        return running

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    log.warning("engine pid %d for %s exited while loading (code %s); its log: "
                                "%s", self.process.pid, self.spec.name, self.process.returncode,
                                self.log_path)  # fmt: skip
                    raise ModelUnavailable(
                        f"{self.spec.name}: the engine exited while loading "
                        f"(code {self.process.returncode}): {self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return
                time.sleep(0.05)
        log.warning("engine pid %d for %s not ready in %g s: stopped; its log: %s",
                    self.process.pid, self.spec.name, timeout, self.log_path)  # fmt: skip
        self.stop()
        raise ModelUnavailable(f"{self.spec.name}: the engine did not become ready in {timeout}s")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def resident_memory(self) -> int:
        """Resident bytes of the engine, its own processes included (vLLM runs its engine
        core and worker as children in the session it leads); 0 once it has exited."""
        if self.process.poll() is not None:
            return 0
        return sum(_resident(pid) for pid in _session(self.process.pid))

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self, grace: float | None = None) -> None:
        """Ask the engine to stop, kill it after `grace` seconds, and return once its own
        processes are gone too (their memory is free for the next model)."""
        if self.process.poll() is not None:
            return
        grace = self.stop_grace if grace is None else grace
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        killed_at = time.monotonic() + grace
        while len(_session(self.process.pid)) > 1 and time.monotonic() < killed_at + grace:
            if time.monotonic() > killed_at:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.05)


def _session(leader: int) -> list[int]:
    """The processes of the session `leader` leads (an engine is started in its own): the
    leader first, whether or not it is still running."""
    found = [leader]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == leader and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _resident(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
