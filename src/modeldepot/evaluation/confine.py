"""The sandbox's launcher: the first program that runs in the confined process. It is run by
its source (`python -I -c SOURCE ARGS`), so it needs nothing but the standard library and no
file outside what the sandbox shows; it confines itself, then executes the untrusted program.

    python -I -c SOURCE '{"folder": ..., "program": ..., "limits": {...}, "landlock": [...]}'

In order: resource limits; with `landlock` (when not inside bubblewrap), a new session, user
and network namespaces where the kernel allows them, and a Landlock ruleset under which files
can be read or executed only beneath the listed paths and written only beneath the folder;
`no_new_privs`; a seccomp filter under which every socket (TCP, UDP, Unix), every signal to
another process, ptrace and reading another process's memory fail, and, with one process
allowed, starting a process or thread fails; io_uring, which would do all of that behind
seccomp's back, fails too; then `execv` of the program. Any step that fails
ends the launcher with 126 before the program runs.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import sys

__all__ = ["main"]

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_CHANGE = sum(1 << b for b in (4, 5, 6, 7, 8, 9, 10, 11, 12))  # remove, make ...
_REFER, _TRUNCATE = 1 << 13, 1 << 14
_NET = (1 << 0) | (1 << 1)

# Architecture -> (audit arch, {syscall: errno}): what the program may not do, by family.
# - socket, socketpair: no network and no Unix socket (PostgreSQL's, a desktop bus); Landlock
#   before ABI 6 does not mediate connecting to a Unix socket, and the network namespace is
#   absent where the kernel refuses user namespaces.
# - kill, tkill, tgkill, pidfd_send_signal, rt_sigqueueinfo, rt_tgsigqueueinfo: no signal
#   to another process of the same user (the depot's server, an engine).
# - ptrace, process_vm_readv, process_vm_writev: no reading or writing another process's
#   memory (keys and API secrets in the depot's server).
# - io_uring_setup, io_uring_enter, io_uring_register: the ring performs socket, connect,
#   openat and more inside the kernel, where seccomp never sees the call, so a filter that
#   denies `socket` alone is bypassed by a ring that opens one (seen reaching PostgreSQL's
#   socket under Landlock). Nothing the programs run needs it.
_ERRNO_EPERM, _ERRNO_EACCES, _ERRNO_EAGAIN = 1, 13, 11
_DENIED = {
    "x86_64": (0xC000003E, {
        41: _ERRNO_EACCES, 53: _ERRNO_EACCES,  # socket, socketpair
        62: _ERRNO_EPERM, 200: _ERRNO_EPERM, 234: _ERRNO_EPERM,  # kill, tkill, tgkill
        424: _ERRNO_EPERM, 129: _ERRNO_EPERM, 297: _ERRNO_EPERM,  # pidfd_send_signal, sigqueue
        101: _ERRNO_EPERM, 310: _ERRNO_EPERM, 311: _ERRNO_EPERM,  # ptrace, process_vm_*
        425: _ERRNO_EPERM, 426: _ERRNO_EPERM, 427: _ERRNO_EPERM,  # io_uring_*
    }),
    "aarch64": (0xC00000B7, {
        198: _ERRNO_EACCES, 199: _ERRNO_EACCES,
        129: _ERRNO_EPERM, 130: _ERRNO_EPERM, 131: _ERRNO_EPERM,
        424: _ERRNO_EPERM, 138: _ERRNO_EPERM, 240: _ERRNO_EPERM,
        117: _ERRNO_EPERM, 270: _ERRNO_EPERM, 271: _ERRNO_EPERM,
        425: _ERRNO_EPERM, 426: _ERRNO_EPERM, 427: _ERRNO_EPERM,
    }),
}  # fmt: skip
_PROCESS_CALLS = {"x86_64": (56, 57, 58, 435), "aarch64": (220, 435)}  # clone, fork, ...


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]  # fmt: skip


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _fail() -> None:
    os._exit(126)


def _limit(limits: dict[str, float]) -> None:
    cpu = max(1, int(limits["seconds"]) + 1)
    for which, value in (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, int(limits["memory"])),
        (resource.RLIMIT_FSIZE, int(limits["file_size"])),
        (resource.RLIMIT_NPROC, int(limits["processes"])),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def _landlock(libc: ctypes.CDLL, folder: str, readable: list[str]) -> None:
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), 1)
    if abi < 1:
        _fail()
    write = _WRITE_FILE | _CHANGE | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    read = _EXECUTE | _READ_FILE | _READ_DIR
    attr = _RulesetAttr(read | write, _NET if abi >= 4 else 0)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        _fail()
    rules = [(folder, read | write), ("/dev/null", _READ_FILE | _WRITE_FILE)]
    rules += [(path, read) for path in readable]
    for path, rights in rules:
        try:
            fd = os.open(path, os.O_PATH)
        except OSError:
            continue  # not on this machine
        if not os.path.isdir(path):
            rights &= _EXECUTE | _READ_FILE | _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)
        rule = _PathBeneath(rights, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
            _fail()
        os.close(fd)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
        _fail()
    os.close(ruleset)


def _seccomp(libc: ctypes.CDLL, one_process: bool) -> None:
    machine = platform.machine()
    if machine not in _DENIED:
        _fail()
    arch, denied = _DENIED[machine]
    rules = dict(denied)
    if one_process:
        rules.update((nr, _ERRNO_EAGAIN) for nr in _PROCESS_CALLS[machine])
    numbers = list(rules)
    n = len(numbers)
    # Layout: checks, then one JEQ per denied call jumping to its RET ERRNO, RET ALLOW,
    # the RET ERRNOs in order, RET KILL (another architecture or x32 calls).
    program = [
        _SockFilter(0x20, 0, 0, 4),  # load the architecture
        _SockFilter(0x15, 0, 2 * n + 3, arch),  # not ours: kill
        _SockFilter(0x20, 0, 0, 0),  # load the syscall number
        _SockFilter(0x35, 2 * n + 1, 0, 0x40000000),  # x32 calls: kill
        *(_SockFilter(0x15, n, 0, nr) for nr in numbers),  # to its own RET ERRNO
        _SockFilter(0x06, 0, 0, 0x7FFF0000),  # allow
        *(_SockFilter(0x06, 0, 0, 0x00050000 | rules[nr]) for nr in numbers),
        _SockFilter(0x06, 0, 0, 0x80000000),  # kill the process
    ]  # fmt: skip
    filters = (_SockFilter * len(program))(*program)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # no_new_privs
        _fail()
    if libc.prctl(22, 2, ctypes.byref(_SockFprog(len(program), filters)), 0, 0) != 0:
        _fail()


def main() -> None:
    settings = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    _limit(settings["limits"])
    readable = settings.get("landlock")
    if readable is not None:
        os.setsid()
        if settings.get("namespaces") and libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
            _fail()
        _landlock(libc, settings["folder"], readable)
    _seccomp(libc, settings["limits"]["processes"] <= 1)
    interpreter = settings["interpreter"]
    os.chdir(settings["folder"])
    os.execv(interpreter, [interpreter, "-I", "-B", settings["program"]])


if __name__ == "__main__":
    main()
