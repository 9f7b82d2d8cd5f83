"""Pickle streams judged by their opcodes, never by loading them.

A pickle is a small stack program: GLOBAL / STACK_GLOBAL / INST import a name, REDUCE / INST /
OBJ / NEWOBJ call it. This module runs that program symbolically with `pickletools.genops`:
strings, tuples and the memo are tracked, so a name assembled from pieces
(`STACK_GLOBAL` over memoised strings, `getattr(module, "name")`, `__import__("os")`) resolves
to the dotted name it would reach. Every imported name outside a short allow-list of what
PyTorch, NumPy and the standard containers write is reported; what is dangerous is ranked
critical from our own list and picklescan's (a second opinion), what merely is unknown is high.

The allow-list is the control; the danger list only ranks. A stream that breaks part-way is
judged by what came before the break, and pickles stacked one after another are all read.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import Item, Nested

__all__ = ["SAFE_GLOBALS", "PickleScanner", "is_dangerous", "is_pickle", "scan_pickle"]

# What torch.save, numpy and the standard containers legitimately write.
SAFE_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "collections.Counter",
        "collections.deque",
        "builtins.set",
        "builtins.frozenset",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.complex",
        "builtins.bool",
        "builtins.str",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.slice",
        "builtins.range",
        "__builtin__.set",
        "__builtin__.frozenset",
        "_codecs.encode",
        "copyreg._reconstructor",
        "builtins.object",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter",
        "torch.Tensor",
        "torch.Size",
        "torch.device",
        "torch.serialization._get_layout",
        "torch.per_tensor_affine",
        "torch.per_channel_affine",
        "torch.strided",
        "torch.sparse_coo",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.ndarray",
        "numpy.dtype",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_compat.NDArrayWrapper",
    }
    | {
        f"torch.{kind}Storage"
        for kind in (
            "Float",
            "Double",
            "Half",
            "BFloat16",
            "Long",
            "Int",
            "Short",
            "Char",
            "Byte",
            "Bool",
            "ComplexFloat",
            "ComplexDouble",
            "QUInt8",
            "QInt8",
            "QInt32",
            "Untyped",
        )
    }
    | {
        f"torch.{dtype}"
        for dtype in (
            "float32",
            "float",
            "float64",
            "double",
            "float16",
            "half",
            "bfloat16",
            "int8",
            "uint8",
            "int16",
            "short",
            "int32",
            "int",
            "int64",
            "long",
            "bool",
            "complex64",
            "complex128",
            "float8_e4m3fn",
            "float8_e5m2",
            "uint16",
            "uint32",
            "uint64",
        )
    }
    | {"numpy.dtypes." + n for n in ("Float32DType", "Float64DType", "Int64DType", "Int32DType")}
)

# Modules every name of which gives code execution, file or network access to a pickle.
# Only used to rank a finding critical: anything not allow-listed is reported regardless.
_DANGEROUS_MODULES = frozenset(
    [
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "runpy",
        "pip",
        "ensurepip",
        "timeit",
        "pdb",
        "bdb",
        "pty",
        "code",
        "codeop",
        "importlib",
        "imp",
        "shutil",
        "socket",
        "ssl",
        "http",
        "urllib",
        "urllib2",
        "urllib3",
        "requests",
        "httpx",
        "aiohttp",
        "ftplib",
        "smtplib",
        "telnetlib",
        "webbrowser",
        "ctypes",
        "cffi",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "joblib.load",
        "marshal",
        "shelve",
        "tempfile",
        "multiprocessing",
        "threading",
        "_thread",
        "signal",
        "asyncio",
        "concurrent",
        "commands",
        "popen2",
        "platform",
        "pydoc",
        "profile",
        "cProfile",
        "trace",
        "doctest",
        "pkgutil",
        "zipimport",
        "glob",
        "linecache",
        "sqlite3",
        "dbm",
        "builtins.exec",
        "inspect",
        "gc",
        "__main__",
        "venv",
        "distutils",
        "setuptools",
        "idlelib",
        "lib2to3",
        "test",
        "nturl2path",
        "uuid",
        "xmlrpc",
        "logging.config",
        "torch.hub",
        "torch.load",
        "torch.serialization",
        "torch.utils.cpp_extension",
        "torch.jit",
        "torch._inductor",
        "torch._dynamo",
        "torch.fx.experimental",
        "numpy.f2py",
        "numpy.testing",
        "numpy.load",
        "numpy.distutils",
    ]
)
_DANGEROUS_NAMES = frozenset(
    [
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.open",
        "builtins.__import__",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.input",
        "builtins.breakpoint",
        "builtins.help",
        "builtins.apply",
        "builtins.memoryview",
        "builtins.type",
        "builtins.classmethod",
        "builtins.staticmethod",
        "builtins.super",
        "builtins.print",
        "__builtin__.eval",
        "__builtin__.exec",
        "__builtin__.getattr",
        "__builtin__.open",
        "__builtin__.__import__",
        "__builtin__.apply",
        "__builtin__.execfile",
        "types.CodeType",
        "types.FunctionType",
        "types.LambdaType",
        "types.ModuleType",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.itemgetter",
        "_operator.attrgetter",
        "_operator.methodcaller",
        "functools.partial",
        "functools.reduce",
        "io.open",
        "_io.open",
        "_io.FileIO",
        "io.FileIO",
        "codecs.open",
        "pathlib.Path",
        "pathlib.PosixPath",
        "numpy.save",
        "numpy.fromfile",
        "numpy.memmap",
    ]
)
# Libraries whose classes a whole-model pickle legitimately names: instantiated as classes
# (NEWOBJ / OBJ) they are reported medium; called through REDUCE they stay high.
_ML_LIBRARIES = frozenset(
    [
        "torch",
        "numpy",
        "sklearn",
        "scipy",
        "pandas",
        "transformers",
        "tokenizers",
        "joblib",
        "xgboost",
        "lightgbm",
    ]
)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".data")
_STRING_OPS = frozenset(
    [
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
    ]
)
_MAX_SEGMENTS = 64


def _picklescan_unsafe() -> dict[str, Any]:
    try:
        from picklescan.scanner import _unsafe_globals
    except Exception:  # the second opinion is optional
        return {}
    return dict(_unsafe_globals)


_SECOND_OPINION = _picklescan_unsafe()


@dataclass(frozen=True)
class _Name:
    """A name a pickle reaches: module + dotted attribute path (empty for a module)."""

    module: str
    attr: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.attr}" if self.attr else self.module

    def child(self, attr: str) -> _Name:
        return _Name(self.module, f"{self.attr}.{attr}" if self.attr else attr)


class _Mark:
    pass


_MARK = _Mark()


@dataclass(frozen=True)
class _Call:
    target: object


def _valid_dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def is_dangerous(name: str) -> bool:
    if name in _DANGEROUS_NAMES:
        return True
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in _DANGEROUS_MODULES:
            return True
    for i in range(1, len(parts)):
        listed = _SECOND_OPINION.get(".".join(parts[:i]))
        rest = ".".join(parts[i:])
        if listed == "*" or (isinstance(listed, set | frozenset) and rest in listed):
            return True
    return False


def _rank(name: str, called: bool) -> tuple[str, Severity]:
    if is_dangerous(name):
        return "pickle.dangerous-global", Severity.CRITICAL
    if name.split(".")[0] in _ML_LIBRARIES and not called:
        return "pickle.library-class", Severity.MEDIUM
    return "pickle.unknown-global", Severity.HIGH


def is_pickle(head: bytes, name: str = "") -> bool:
    """Whether bytes look like a pickle stream, by content (any extension)."""
    if len(head) >= 2 and head[0] == 0x80 and 0 <= head[1] <= 5:
        return True
    if not head or head[:1] not in b"c(}]Ncijo":
        return False
    # Protocol 0/1: accept only a stream whose first ops parse and that names a valid global or
    # ends cleanly; plain text starting with one of these letters fails here.
    ops = 0
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(head)):
            ops += 1
            if op.name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                return _valid_dotted(module) and _valid_dotted(attr)
            if op.name == "STOP":
                return ops >= 2 or name.lower().endswith(_PICKLE_SUFFIXES)
    except Exception:
        return False
    return False


class _Machine:
    """Symbolic execution of one pickle stream."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self.imported: dict[str, int] = {}  # dotted name -> byte offset of first import
        self.called: dict[str, int] = {}
        self.instantiated: dict[str, int] = {}
        self.unresolved: list[tuple[str, int]] = []

    def pop(self) -> object:
        return self.stack.pop() if self.stack else None

    def pop_mark(self) -> list[object]:
        items: list[object] = []
        while self.stack:
            value = self.stack.pop()
            if value is _MARK:
                break
            items.append(value)
        items.reverse()
        return items

    def imported_name(self, name: _Name, pos: int) -> _Name:
        self.imported.setdefault(name.dotted, pos)
        return name

    def call(self, target: object, args: object, pos: int, *, as_class: bool = False) -> object:
        if not isinstance(target, _Name):
            if target is not None and not isinstance(target, _Call):
                return _Call(target)
            self.unresolved.append(("call of a value the scanner cannot resolve", pos))
            return _Call(target)
        book = self.instantiated if as_class else self.called
        book.setdefault(target.dotted, pos)
        dotted = target.dotted
        if isinstance(args, tuple):
            if dotted in ("builtins.getattr", "__builtin__.getattr") and len(args) >= 2:
                obj, attr = args[0], args[1]
                if isinstance(obj, _Name) and isinstance(attr, str):
                    return self.imported_name(obj.child(attr), pos)
            if (
                dotted
                in (
                    "builtins.__import__",
                    "__builtin__.__import__",
                    "importlib.import_module",
                )
                and args
                and isinstance(args[0], str)
            ):
                return self.imported_name(_Name(args[0], ""), pos)
        return _Call(target)

    def step(self, op: pickletools.OpcodeInfo, arg: Any, pos: int) -> None:
        name = op.name
        if name in _STRING_OPS:
            self.stack.append(arg)
        elif name == "MARK":
            self.stack.append(_MARK)
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            target = self.imported_name(_Name(module, attr), pos)
            if name == "INST":
                self.stack.append(self.call(target, tuple(self.pop_mark()), pos))
            else:
                self.stack.append(target)
        elif name == "STACK_GLOBAL":
            top, below = self.pop(), self.pop()
            if isinstance(below, str) and isinstance(top, str):
                self.stack.append(self.imported_name(_Name(below, top), pos))
            else:
                self.unresolved.append(("STACK_GLOBAL with a name built at load time", pos))
                self.stack.append(None)
        elif name == "REDUCE":
            args, func = self.pop(), self.pop()
            self.stack.append(self.call(func, args, pos))
        elif name == "OBJ":
            items = self.pop_mark()
            cls = items[0] if items else None
            self.stack.append(self.call(cls, tuple(items[1:]), pos, as_class=True))
        elif name == "NEWOBJ":
            args, cls = self.pop(), self.pop()
            self.stack.append(self.call(cls, args, pos, as_class=True))
        elif name == "NEWOBJ_EX":
            _kwargs, args, cls = self.pop(), self.pop(), self.pop()
            self.stack.append(self.call(cls, args, pos, as_class=True))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = self.stack[-1] if self.stack else None
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.stack[-1] if self.stack else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            self.stack.append(self.memo.get(int(arg)))
        elif name == "TUPLE":
            self.stack.append(tuple(self.pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)]
            self.stack.append(tuple(reversed(items)))
        elif name == "EMPTY_TUPLE":
            self.stack.append(())
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.unresolved.append((f"extension code {arg} (copyreg registry)", pos))
            self.stack.append(None)
        elif name == "DUP":
            self.stack.append(self.stack[-1] if self.stack else None)
        elif name == "POP_MARK":
            self.pop_mark()
        else:
            self.generic(op, arg)

    def generic(self, op: pickletools.OpcodeInfo, arg: Any) -> None:
        """Any other opcode: apply its documented stack effect with opaque values."""
        before = list(op.stack_before)
        if before and before[0] is pickletools.markobject:
            self.pop_mark()
        else:
            for _ in before:
                self.pop()
        for _ in op.stack_after:
            self.stack.append(arg if op.arg is not None else None)

    def findings(self) -> Iterator[Finding]:
        for dotted, pos in self.imported.items():
            if dotted in SAFE_GLOBALS:
                continue
            called = dotted in self.called
            code, severity = _rank(dotted, called)
            how = (
                "calls" if called else "instantiates" if dotted in self.instantiated else "imports"
            )
            yield Finding(
                f"{self.location}@{pos}", code, severity,
                f"pickle {how} {dotted}, which is not on the allow-list"
                + (" and gives code execution or system access" if severity is Severity.CRITICAL
                   else ""),
            )  # fmt: skip
        for what, pos in self.unresolved:
            yield Finding(
                f"{self.location}@{pos}", "pickle.unresolved", Severity.HIGH,
                f"pickle performs a {what}",
            )  # fmt: skip


def scan_pickle(stream: IO[bytes], location: str) -> list[Finding]:
    """Findings for every pickle in `stream` (stacked pickles included), without loading it."""
    findings: list[Finding] = []
    for segment in range(_MAX_SEGMENTS):
        start = stream.tell()
        head = stream.read(2)
        if not head:
            break
        stream.seek(start)
        if segment and not is_pickle(stream.read(4096)):
            stream.seek(start)
            trailing = len(stream.read())
            findings.append(
                    Finding(f"{location}@{start}", "pickle.trailing-data", Severity.INFO,
                            f"{trailing} bytes after the last pickle (raw data, not a pickle)")
                )  # fmt: skip
            break
        stream.seek(start)
        machine = _Machine(location)
        broken: str | None = None
        try:
            for op, arg, pos in pickletools.genops(stream):
                machine.step(op, arg, pos if pos is not None else 0)
        except Exception as exc:  # a damaged stream: judge what came before the break
            broken = str(exc) or type(exc).__name__
        findings.extend(machine.findings())
        if broken is not None:
            findings.append(
                Finding(f"{location}@{stream.tell()}", "pickle.broken-stream", Severity.LOW,
                        f"pickle stream breaks off ({broken}); judged by what came before")
            )  # fmt: skip
            break
        if segment == 1:
            findings.append(
                Finding(f"{location}@{start}", "pickle.stacked", Severity.LOW,
                        "further pickles follow the first one in the same stream (all read)")
            )  # fmt: skip
    return findings


class PickleScanner:
    """Any stream that is a pickle by content, whatever its extension."""

    name: ClassVar[str] = "pickle"

    def accepts(self, item: Item) -> bool:
        return is_pickle(item.head, item.name)

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        with item.seekable() as stream:
            found = scan_pickle(stream, item.location)
        if item.suffix not in _PICKLE_SUFFIXES and not item.name.endswith(".npy"):
            found.append(
                Finding(item.location, "pickle.disguised", Severity.MEDIUM,
                        f"a pickle under the name {item.name!r}: loaders that go by content "
                        "will unpickle it")
            )  # fmt: skip
        return found
