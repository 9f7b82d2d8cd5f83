"""Running untrusted code (a model's completion) confined: a separate process in a throwaway
folder, with CPU, memory, file-size and process limits, no network, and no write access outside
its folder.

Confinement is by the kernel, not by inspecting the code: before the child executes anything it
enters a new network namespace (no interface but a down loopback; with no user namespaces,
Landlock's TCP rules deny connect and bind instead), restricts itself with Landlock so that
files may be created, written or removed only beneath its folder, and (by default) installs a
seccomp filter under which it cannot start another process or thread. Landlock and the namespaces
are inherited by everything the code starts. If neither network confinement can be set up, or
Landlock is missing, nothing runs: `SandboxUnavailable` says why.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modeldepot.errors import DepotError

__all__ = ["Limits", "Outcome", "SandboxUnavailable", "run_confined"]

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and arm64
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# Landlock filesystem rights that change the file system (read and execute stay allowed).
_FS_WRITE = (
    (1 << 1)  # WRITE_FILE
    | (1 << 4)  # REMOVE_DIR
    | (1 << 5)  # REMOVE_FILE
    | (1 << 6)  # MAKE_CHAR
    | (1 << 7)  # MAKE_DIR
    | (1 << 8)  # MAKE_REG
    | (1 << 9)  # MAKE_SOCK
    | (1 << 10)  # MAKE_FIFO
    | (1 << 11)  # MAKE_BLOCK
    | (1 << 12)  # MAKE_SYM
)
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_NET_BIND, _NET_CONNECT = 1 << 0, 1 << 1  # ABI 4


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


@dataclass(frozen=True)
class Outcome:
    returncode: int | None
    """None when it ran out of time."""
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """Landlock's ABI version, or 0 when the kernel does not offer it."""
    if sys.platform != "linux":
        return 0
    abi = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(abi), 0)


@functools.cache
def _user_namespaces() -> bool:
    """Whether an unprivileged process may create a user + network namespace."""
    probe = subprocess.run(
        [sys.executable, "-c",
         "import ctypes,sys;l=ctypes.CDLL(None,use_errno=True);"
         f"sys.exit(0 if l.unshare({_CLONE_NEWUSER | _CLONE_NEWNET})==0 else 1)"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return probe.returncode == 0


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]  # fmt: skip


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# Architecture -> (audit arch, syscalls that create a process or thread).
_PROCESS_SYSCALLS = {
    "x86_64": (0xC000003E, (56, 57, 58, 435)),  # clone, fork, vfork, clone3
    "aarch64": (0xC00000B7, (220, 435)),  # clone, clone3
}
_SECCOMP_MODE_FILTER, _PR_SET_SECCOMP = 2, 22
_RET_ALLOW, _RET_KILL, _RET_EAGAIN = 0x7FFF0000, 0x80000000, 0x00050000 | 11


def _no_new_processes() -> bool:
    """A seccomp filter: creating a process or thread fails with EAGAIN (RLIMIT_NPROC does not
    bind root). Returns False on an architecture it does not know."""
    import platform

    known = _PROCESS_SYSCALLS.get(platform.machine())
    if known is None:
        return False
    arch, calls = known
    n = len(calls)
    program = [
        _SockFilter(0x20, 0, 0, 4),  # load the architecture
        _SockFilter(0x15, 0, n + 4, arch),  # another one: kill
        _SockFilter(0x20, 0, 0, 0),  # load the syscall number
        _SockFilter(0x35, n + 1, 0, 0x40000000),  # x32 calls: refuse
        *(_SockFilter(0x15, n - i, 0, nr) for i, nr in enumerate(calls)),
        _SockFilter(0x06, 0, 0, _RET_ALLOW),
        _SockFilter(0x06, 0, 0, _RET_EAGAIN),
        _SockFilter(0x06, 0, 0, _RET_KILL),
    ]  # fmt: skip
    filters = (_SockFilter * len(program))(*program)
    prog = _SockFprog(len(program), filters)
    return int(_libc().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)) == 0


def _confine(folder: str, abi: int, netns: bool, limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    libc = _libc()
    cpu = max(1, int(limits.seconds) + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()
    if netns and libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        os._exit(126)
    fs = _FS_WRITE | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    net = (_NET_BIND | _NET_CONNECT) if abi >= 4 else 0
    attr = _RulesetAttr(fs, net)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        os._exit(126)
    for path, rights in ((folder, fs), ("/dev/null", (1 << 1) | (_FS_TRUNCATE if abi >= 3 else 0))):
        fd = os.open(path, os.O_PATH | (os.O_DIRECTORY if path == folder else 0))
        rule = _PathBeneath(rights, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            os._exit(126)
        os.close(fd)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        os._exit(126)
    if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
        os._exit(126)
    os.close(ruleset)
    if limits.processes <= 1 and not _no_new_processes():
        os._exit(126)


def run_confined(program: str, *, limits: Limits | None = None) -> Outcome:
    """Run Python source `program` confined (see the module's docstring) and report how it
    ended. The folder it ran in is removed afterwards."""
    limits = limits or Limits()
    abi = landlock_abi()
    netns = _user_namespaces()
    if abi < 1:
        raise SandboxUnavailable("the kernel offers no Landlock: untrusted code is not run")
    if not netns and abi < 4:
        raise SandboxUnavailable(
            "neither user namespaces nor Landlock network rules are available: untrusted code "
            "is not run"
        )
    folder = tempfile.mkdtemp(prefix="depot-sandbox-")
    try:
        script = Path(folder) / "program.py"
        script.write_text(program, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-B", str(script)], cwd=folder, env=env,
                capture_output=True, timeout=limits.seconds, stdin=subprocess.DEVNULL,
                preexec_fn=lambda: _confine(folder, abi, netns, limits),
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            return Outcome(None, _text(exc.stdout), _text(exc.stderr))
        if done.returncode == 126 and not done.stdout and not done.stderr:
            raise SandboxUnavailable("the sandbox could not be set up in the child process")
        return Outcome(done.returncode, _text(done.stdout), _text(done.stderr))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")[-4000:]
