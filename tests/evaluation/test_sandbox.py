"""Code from a model runs confined: it cannot write outside its own folder, reach the network,
or outrun its limits; ordinary code runs and passes."""

from __future__ import annotations

import ast
import contextlib
import socket
import threading
from pathlib import Path

import pytest

from modeldepot.evaluation import sandbox
from modeldepot.evaluation.sandbox import Limits, run_confined


@pytest.fixture(autouse=True, params=["bubblewrap", "landlock"])
def confinement(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs inside bubblewrap (installed by `.ci/run`) and in the fallback a machine
    without it gets (Landlock, namespaces, seccomp)."""
    if request.param == "landlock":
        monkeypatch.setattr(sandbox, "_bubblewrap", lambda: None)
    assert sandbox.confinement() == request.param
    return str(request.param)


def test_ordinary_code_runs_and_may_use_its_own_folder() -> None:
    outcome = run_confined(
        "open('scratch.txt', 'w').write('x')\nprint(open('scratch.txt').read() * 3)"
    )
    assert outcome.passed and outcome.stdout.strip() == "xxx"
    assert not run_confined("assert 1 + 1 == 3").passed


def test_hostile_completion_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    victim = tmp_path / "depot-home"
    victim.mkdir()
    (victim / "registry.db").write_text("precious")
    program = f"""
import os, shutil, subprocess
attempts = []
for action in (
    lambda: open({str(victim / "planted.txt")!r}, 'w').write('x'),
    lambda: open({str(victim / "registry.db")!r}, 'w').write('gone'),
    lambda: os.remove({str(victim / "registry.db")!r}),
    lambda: os.mkdir({str(victim / "newdir")!r}),
    lambda: os.rename({str(victim / "registry.db")!r}, 'stolen.db'),
    lambda: subprocess.run(['sh', '-c', 'echo x > {victim / "shell.txt"}'], check=True),
    lambda: open('/tmp/modeldepot-escape.txt', 'w').write('x'),
):
    try:
        action()
        attempts.append('succeeded')
    except Exception as exc:
        attempts.append(type(exc).__name__)
print(attempts)
"""
    outcome = run_confined(program)
    assert "succeeded" not in outcome.stdout, outcome.stdout + outcome.stderr
    assert (victim / "registry.db").read_text() == "precious"
    assert sorted(p.name for p in victim.iterdir()) == ["registry.db"]
    assert not Path("/tmp/modeldepot-escape.txt").exists()


def test_hostile_completion_cannot_reach_the_network() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        server.settimeout(5)
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    listener = threading.Thread(target=accept)
    listener.start()
    program = f"""
import socket
for target in (('127.0.0.1', {port}), ('1.1.1.1', 80)):
    try:
        s = socket.socket()
        s.settimeout(2)
        s.connect(target)
        print('connected', target)
    except OSError as exc:
        print('refused', type(exc).__name__)
"""
    outcome = run_confined(program)
    listener.join()
    server.close()
    assert "connected" not in outcome.stdout and outcome.stdout.count("refused") == 2
    assert accepted == []


def test_limits_stop_runaway_code() -> None:
    spin = run_confined("while True: pass", limits=Limits(seconds=2))
    assert spin.returncode is None and not spin.passed
    hog = run_confined("x = bytearray(4 * 1024**3)", limits=Limits(memory=512 * 1024**2))
    assert not hog.passed and "MemoryError" in hog.stderr
    bomb = "import os\nwhile True:\n    if os.fork() == 0:\n        os.pause()\n"
    forks = run_confined(bomb)
    assert not forks.passed and "BlockingIOError" in forks.stderr
    threads = run_confined("import threading\nthreading.Thread(target=print).start()")
    assert not threads.passed


def test_time_limit_holds_after_the_program_closes_its_output() -> None:
    """A program that closes stdout and stderr and then waits is still stopped at its time
    limit, not waited for until it chooses to end."""
    program = "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n"
    quiet = run_confined(program, limits=Limits(seconds=2))
    assert quiet.returncode is None and not quiet.passed, quiet


@pytest.mark.parametrize("size", [32 * 1024**2])
def test_file_size_limit(size: int) -> None:
    outcome = run_confined(f"open('big', 'wb').write(b'0' * {size})",
                           limits=Limits(file_size=1024**2))  # fmt: skip
    assert not outcome.passed


def test_hostile_completion_can_read_signal_or_connect_to_nothing(tmp_path: Path) -> None:
    """What a completion might try against the depot that runs it: its signing key and
    registry, the system's secrets, another process of the same user (signal, memory,
    environment), PostgreSQL's Unix socket, and every socket family."""
    import subprocess
    import sys

    home = tmp_path / "depot-home"
    (home / "keys").mkdir(parents=True)
    (home / "keys" / "depot").write_text("-----BEGIN PRIVATE KEY-----secret")
    (home / "registry.db").write_text("registry rows")
    unix_path = tmp_path / "db.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(unix_path))
    listener.listen()
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    program = f"""
import os, socket
results = {{}}
def attempt(name, action):
    try:
        action()
        results[name] = 'succeeded'
    except Exception as exc:
        results[name] = type(exc).__name__
attempt('key', lambda: open({str(home / "keys" / "depot")!r}).read())
attempt('registry', lambda: open({str(home / "registry.db")!r}).read())
attempt('listing', lambda: os.listdir({str(home)!r}))
attempt('shadow', lambda: open('/etc/shadow').read())
attempt('passwd', lambda: open('/etc/passwd').read())
attempt('environ', lambda: open('/proc/{victim.pid}/environ').read())
attempt('signal', lambda: os.kill({victim.pid}, 9))
attempt('unix', lambda: socket.socket(socket.AF_UNIX).connect({str(unix_path)!r}))
attempt('postgres', lambda: socket.socket(socket.AF_UNIX).connect(
    '/var/run/postgresql/.s.PGSQL.55432'))
attempt('tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
    b'x', ('127.0.0.1', 53)))
attempt('tcp6', lambda: socket.socket(socket.AF_INET6))
attempt('pair', lambda: socket.socketpair())
print(results)
"""
    try:
        outcome = run_confined(program)
        assert victim.poll() is None, "the sandbox killed another process"
    finally:
        victim.kill()
        listener.close()
    assert outcome.passed, outcome.stderr
    results = ast.literal_eval(outcome.stdout.strip())
    assert len(results) == 13 and "succeeded" not in results.values(), results


_IO_URING = """
import ctypes, errno, mmap, os, stat, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
params = ctypes.create_string_buffer(120)  # struct io_uring_params
ring = libc.syscall(425, 4, params)  # io_uring_setup
if ring < 0:
    print("setup refused", errno.errorcode[ctypes.get_errno()])
else:
    print("setup succeeded")
    sq_entries, cq_entries = struct.unpack_from("<II", params, 0)
    sq_head, sq_tail, sq_mask, _, _, _, sq_array = struct.unpack_from("<7I", params, 40)
    cq_head, cq_tail, cq_mask, _, _, cqes = struct.unpack_from("<6I", params, 80)
    sq = mmap.mmap(ring, sq_array + 4 * sq_entries, offset=0)
    cq = mmap.mmap(ring, cqes + 16 * cq_entries, offset=0x8000000)
    sqes = mmap.mmap(ring, 64 * sq_entries, offset=0x10000000)

    def submit(opcode, fd, addr, length, off):
        tail = struct.unpack_from("<I", sq, sq_tail)[0]
        index = tail & struct.unpack_from("<I", sq, sq_mask)[0]
        sqes[64 * index:64 * index + 64] = struct.pack("<BBHiQQII", opcode, 0, 0, fd, off, addr,
                                                        length, 0).ljust(64, b"\\0")
        struct.pack_into("<I", sq, sq_array + 4 * index, index)
        struct.pack_into("<I", sq, sq_tail, tail + 1)
        libc.syscall(426, ring, 1, 1, 1, None, 0)  # io_uring_enter, wait for one
        head = struct.unpack_from("<I", cq, cq_head)[0]
        res = struct.unpack_from("<i", cq, cqes + 16 * (head & struct.unpack_from(
            "<I", cq, cq_mask)[0]) + 8)[0]
        struct.pack_into("<I", cq, cq_head, head + 1)
        return res

    sock = submit(45, 1, 0, 0, 1)  # IORING_OP_SOCKET AF_UNIX SOCK_STREAM
    print("socket", sock)
    if sock >= 0:
        address = ctypes.create_string_buffer(struct.pack("<H", 1) + PATH.encode() + b"\\0", 110)
        print("connect", submit(16, sock, ctypes.addressof(address), 0, 110))  # IORING_OP_CONNECT
sockets = []
for fd in range(256):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            sockets.append(fd)
    except OSError:
        pass
print("sockets", sockets)
"""


def test_hostile_completion_cannot_open_a_socket_through_io_uring(tmp_path: Path) -> None:
    """io_uring opens and connects sockets inside the kernel, out of seccomp's sight: the ring
    itself is refused, so no socket is opened (here: to a Unix socket like PostgreSQL's)."""
    unix_path = tmp_path / "db.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(unix_path))
    listener.listen()
    listener.settimeout(0.5)
    try:
        outcome = run_confined(_IO_URING.replace("PATH", repr(str(unix_path))))
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert outcome.passed, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines == ["setup refused EPERM", "sockets []"], outcome.stdout


def test_output_is_read_within_a_bound() -> None:
    """A program that floods its output is killed once it passes the bound, and the outcome
    says so; the caller holds no more than the bound of it."""
    limits = Limits(seconds=60, output=256 * 1024)
    for stream in ("stdout", "stderr"):
        flood = run_confined(f"import sys\nwhile True:\n    sys.{stream}.write('x' * 65536)\n",
                             limits=limits)  # fmt: skip
        assert flood.output_exceeded and not flood.passed, flood
        assert flood.returncode is not None, "killed for its output, not for its time"
        assert set(getattr(flood, stream)) == {"x"}
    at_bound = run_confined("import sys\nsys.stdout.write('y' * 256 * 1024)", limits=limits)
    assert at_bound.passed and not at_bound.output_exceeded
