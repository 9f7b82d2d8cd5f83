"""Running untrusted code (a model's completion) confined: a separate process in a throwaway
folder, with CPU, memory, file-size and process limits, that can read nothing outside the
interpreter and its folder, write nothing outside its folder, open no socket of any family
(TCP, UDP, Unix), and signal, trace or read no other process.

Confinement is by the kernel, not by inspecting the code, and is set up by a launcher
(`confine.py`) that runs as the confined process's first program, so nothing is done between
fork and exec in this (threaded) process. Where Debian's bubblewrap (`bwrap`) is installed, the
launcher runs inside it: new user, PID, network, IPC and UTS namespaces, only `/usr`, the
interpreter and the folder mounted, all capabilities dropped. Elsewhere the launcher confines
itself with Landlock (reads and writes) and, where the kernel allows, user and network
namespaces. In both, it installs a seccomp filter (sockets, signals to other processes, ptrace,
io_uring, and, by default, new processes and threads fail) and resource limits. If neither
bubblewrap nor Landlock can be had, nothing runs: `SandboxUnavailable` says why. The program's
output is read within a bound (`Limits.output` bytes of each stream: a program that writes more
is killed, and the outcome says so) and returned to the caller, which keeps only what it needs
(evaluation keeps the exception's name).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from modeldepot.errors import DepotError

log = logging.getLogger("modeldepot.evaluation")

__all__ = ["Limits", "Outcome", "SandboxUnavailable", "confinement", "run_confined"]

_LAUNCHER = (Path(__file__).parent / "confine.py").read_text(encoding="utf-8")
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000


class SandboxUnavailable(DepotError):
    """This machine cannot confine untrusted code, so it is not run."""


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0
    memory: int = 1024**3
    file_size: int = 16 * 1024**2
    processes: int = 1
    """1: no other process or thread may start (seccomp); more: RLIMIT_NPROC (which the
    kernel does not apply to root)."""
    output: int = 1024**2
    """Bytes read of each of stdout and stderr; a program that writes more is killed."""


@dataclass(frozen=True)
class Outcome:
    returncode: int | None
    """None when it ran out of time."""
    stdout: str
    stderr: str
    output_exceeded: bool = False
    """It wrote more than `Limits.output` bytes to stdout or stderr, so it was killed and what
    it wrote is cut there."""

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.output_exceeded


def landlock_abi() -> int:
    """Landlock's ABI version, or 0 when the kernel does not offer it."""
    if sys.platform != "linux":
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    return max(int(libc.syscall(444, None, ctypes.c_size_t(0), 1)), 0)


@functools.cache
def _user_namespaces() -> bool:
    """Whether this process's children may create a user + network namespace."""
    probe = subprocess.run(
        [sys.executable, "-c",
         "import ctypes,sys;l=ctypes.CDLL(None,use_errno=True);"
         f"sys.exit(0 if l.unshare({_CLONE_NEWUSER | _CLONE_NEWNET})==0 else 1)"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return probe.returncode == 0


def _interpreter() -> str:
    return os.path.realpath(sys.executable)


def _readable() -> list[str]:
    """What the program may read: the interpreter, its standard library, the system's shared
    libraries; nothing of the depot (keys, registry, blobs), of other users, or of /etc."""
    paths = {_interpreter(), sys.base_prefix, sysconfig.get_path("stdlib"), "/usr", "/lib",
             "/lib64", "/bin"}  # fmt: skip
    return sorted(os.path.realpath(p) for p in paths if os.path.exists(p))


@functools.cache
def _bubblewrap() -> str | None:
    """bwrap, if it is installed and can build a sandbox here."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = subprocess.run([found, *_bwrap_mounts(), "--", "/usr/bin/true"], capture_output=True,
                           timeout=30)  # fmt: skip
    return found if probe.returncode == 0 else None


def _bwrap_mounts() -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--proc", "/proc", "--dev", "/dev", "--ro-bind", "/usr", "/usr"]  # fmt: skip
    for top in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in {sys.base_prefix, os.path.dirname(_interpreter())}:
        real = os.path.realpath(path)
        if not real.startswith("/usr/"):
            args += ["--ro-bind", real, real]
    return args


def confinement() -> str:
    """How untrusted code is confined here: `bubblewrap`, `landlock`, or why it is not run."""
    if _bubblewrap() is not None:
        return "bubblewrap"
    if landlock_abi() < 1:
        raise SandboxUnavailable(
            "neither bubblewrap (Debian's package bubblewrap) nor Landlock is available: "
            "untrusted code is not run"
        )
    if not _user_namespaces() and landlock_abi() < 4:
        raise SandboxUnavailable(
            "without bubblewrap, neither user namespaces nor Landlock network rules are "
            "available: untrusted code is not run"
        )
    return "landlock"


def run_confined(program: str, *, limits: Limits | None = None) -> Outcome:
    """Run Python source `program` confined (see the module's docstring) and report how it
    ended. The folder it ran in is removed afterwards."""
    limits = limits or Limits()
    how = confinement()
    folder = os.path.realpath(tempfile.mkdtemp(prefix="depot-sandbox-"))
    try:
        script = Path(folder) / "program.py"
        script.write_text(program, encoding="utf-8")
        settings: dict[str, object] = {
            "folder": folder, "program": str(script), "interpreter": _interpreter(),
            "limits": asdict(limits),
        }  # fmt: skip
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
        launch = [_interpreter(), "-I", "-B", "-c", _LAUNCHER]
        if how == "bubblewrap":
            bwrap = _bubblewrap()
            assert bwrap is not None
            variables = [a for k, v in env.items() for a in ("--setenv", k, v)]
            command = [bwrap, *_bwrap_mounts(), "--bind", folder, folder, "--remount-ro", "/",
                       "--chdir", folder, "--clearenv", *variables,
                       "--", *launch, json.dumps(settings)]  # fmt: skip
        else:
            settings |= {"landlock": _readable(), "namespaces": _user_namespaces()}
            command = [*launch, json.dumps(settings)]
        outcome = _run(command, folder, env, limits)
        if outcome.returncode == 126 and not outcome.stdout and not outcome.stderr:
            raise SandboxUnavailable("the sandbox could not be set up in the child process")
        return outcome
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], folder: str, env: dict[str, str], limits: Limits) -> Outcome:
    """Run the launcher, reading at most `limits.output` bytes of each stream (the rest is never
    read: the process is killed), until it ends or `limits.seconds` pass (then it and its
    process group are killed), whether or not its streams are still open."""
    process = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    kept = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    deadline = time.monotonic() + limits.seconds
    exceeded = timed_out = False
    try:
        with selectors.DefaultSelector() as selector:
            for fd in kept:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map() and not exceeded:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for key, _ in selector.select(left):
                    kept_here = kept[key.fd]
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fd)
                    elif len(kept_here) + len(chunk) > limits.output:
                        kept_here += chunk[: limits.output - len(kept_here)]
                        exceeded = True
                    else:
                        kept_here += chunk
        if not (timed_out or exceeded):
            # Both streams closed, but the program may still run (it can close its own):
            # the time limit holds until it ends.
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out or exceeded:
            _kill(process)
        returncode = process.wait()
    finally:
        if process.poll() is None:
            _kill(process)
            process.wait()
        process.stdout.close()
        process.stderr.close()
    stdout, stderr = (_text(bytes(b)) for b in kept.values())
    if exceeded:
        log.warning("a sandboxed program wrote more than %d bytes: killed", limits.output)
    return Outcome(None if timed_out else returncode, stdout, stderr, exceeded)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the launcher and, under Landlock, the session it started (its group has its pid
    once it has called setsid); bubblewrap takes its sandbox with it (--die-with-parent)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.kill()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")[-4000:]
