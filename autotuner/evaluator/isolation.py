"""Keep an untrusted candidate away from the parent's secrets, files, network and resources.

Layers, each standing alone (a later one covers what an earlier one cannot see):

* **Environment** (parent side): the child gets an allow-listed environment; no name with
  KEY, TOKEN, SECRET, PASSWORD... and never the database URL. The fork server the children
  are forked from is itself started with that environment, so no secret sits in its memory
  or in ``/proc/<pid>/environ``.
* **Working folder**: cwd, HOME and TMPDIR are the child's own temporary folder; compiler
  caches (CuPy, torch extensions, Triton, inductor, the CUDA JIT cache) go to the shared
  autotuner cache.
* **Network**: a new, empty network namespace (``unshare(CLONE_NEWNET)``, with a user
  namespace where the machine only allows that); where neither is allowed, Python sockets
  are refused by the audit hook.
* **Resource limits**: CPU seconds, host memory (``RLIMIT_DATA``: private writable memory;
  ``RLIMIT_AS`` would count the huge virtual ranges CUDA reserves for unified addressing and
  break CUDA), file size, processes (``RLIMIT_NPROC``, binding only for a non-root user), no
  core dumps.
* **Files** (kernel-enforced, native code included): a Landlock ruleset lets the process and
  every process it starts (``load_inline``'s nvcc, Triton's ptxas) read only system, Python
  and project folders, the cache and its own folder, and write only its own folder, the cache
  and device nodes; ``/proc`` shows only the process itself (no other process's environment).
* **Python audit hook** (armed when candidate code is about to run): refuses and *records*
  file access outside those folders, sockets, and process spawns other than the compilers
  the formats need. A recorded attempt rejects the candidate (stage ``isolation``) even if
  the candidate swallowed the error.

Everything here runs in the child before any candidate code, so the candidate cannot undo it.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autotuner.candidate import MODULE_PREFIX

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE", "PRIVATE")
_ALLOWED_NAMES = {
    "PATH", "LANG", "LANGUAGE", "TERM", "TZ", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
    "LD_LIBRARY_PATH", "CC", "CXX", "MAX_JOBS", "VIRTUAL_ENV", "CONDA_PREFIX", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "USER", "LOGNAME", "SHELL",
}
_ALLOWED_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "CUPY_", "TRITON_", "TORCH_", "TORCHINDUCTOR_", "AUTOTUNER_")
# Named outright: AUTOTUNER_DB_URL matches an allowed prefix but carries a password.
_DENIED_NAMES = {"AUTOTUNER_DB_URL", "DATABASE_URL"}
# Programs load_inline, Triton and torch.compile start; any other spawn from Python is refused.
COMPILER_TOOLS = {
    "ninja", "nvcc", "ptxas", "cicc", "fatbinary", "nvlink", "cudafe++", "c++", "g++", "gcc", "cc", "clang",
    "clang++", "ld", "as", "ldconfig", "which", "cuobjdump", "nvdisasm", "uname", "objdump", "file",
}
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
LAYERS = "none"  # what enter() put in place, for the result's provenance


def secret_name(name: str) -> bool:
    upper = name.upper()
    return upper in _DENIED_NAMES or any(word in upper for word in SECRET_WORDS)


def _has_credentials(value: str) -> bool:
    """``scheme://user:password@host`` (a database or proxy URL with its password)."""
    head = value.split("@", 1)[0]
    return "://" in head and ":" in head.split("://", 1)[1] and "@" in value


def cache_dirs(cache_dir: Path) -> dict[str, str]:
    """Where the compilers the candidate formats use keep their caches: all under ``cache_dir``."""
    return {
        "AUTOTUNER_CACHE_DIR": str(cache_dir),
        "CUPY_CACHE_DIR": str(cache_dir / "nvrtc"),
        "TORCH_EXTENSIONS_DIR": str(cache_dir / "torch_extensions"),
        "TRITON_CACHE_DIR": str(cache_dir / "triton"),
        "TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor"),
        "CUDA_CACHE_PATH": str(cache_dir / "cuda_jit"),
        "XDG_CACHE_HOME": str(cache_dir / "xdg"),
    }


def child_environment(parent: dict[str, str], workdir: Path, cache_dir: Path,
                      extra: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment of a candidate's process.

    Only names the compilers and the GPU stack need pass; anything named like a secret, the
    database URL and any value carrying URL credentials are dropped even if allow-listed.
    """
    db_url = parent.get("AUTOTUNER_DB_URL", "")
    env = {}
    for name, value in parent.items():
        if not (name in _ALLOWED_NAMES or name.startswith(_ALLOWED_PREFIXES)):
            continue
        if secret_name(name) or _has_credentials(value) or (db_url and db_url in value):
            continue
        env[name] = value
    home = str(workdir)
    env.update(HOME=home, TMPDIR=home, TMP=home, TEMP=home, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(cache_dirs(cache_dir))
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Limits:
    """Resource limits of a candidate's process (``None``: leave that limit as it is)."""

    cpu_s: int | None = None
    host_memory_bytes: int | None = None
    file_bytes: int | None = None
    processes: int | None = None


@dataclass
class SandboxSpec:
    """What the child needs to shut itself in; travels in the job file."""

    workdir: str
    cache_dir: str
    read_roots: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)
    network: bool = True  # isolate the network
    files: bool = True  # Landlock file rules

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _lower(kind: int, value: int) -> None:
    """Lower soft and hard limit together, so the candidate cannot raise it again."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    new_hard = value
    if kind == resource.RLIMIT_CPU:  # SIGXCPU at the soft limit, SIGKILL 5 s later
        new_hard = value + 5 if hard == resource.RLIM_INFINITY else min(hard, value + 5)
    resource.setrlimit(kind, (value, new_hard))


def _user_tasks() -> int:
    """Threads and processes of this user (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def apply_limits(limits: Limits) -> list[str]:
    """Lower this process's limits (children inherit them); returns what was set, for the record."""
    applied = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a core dump would hold the process's memory
    if limits.cpu_s:
        _lower(resource.RLIMIT_CPU, int(limits.cpu_s))
        applied.append(f"cpu {int(limits.cpu_s)} s")
    if limits.host_memory_bytes:
        _lower(resource.RLIMIT_DATA, int(limits.host_memory_bytes))
        applied.append(f"host memory {limits.host_memory_bytes / 2**30:.3g} GiB")
    if limits.file_bytes:
        _lower(resource.RLIMIT_FSIZE, int(limits.file_bytes))
        applied.append(f"file size {limits.file_bytes / 2**20:.3g} MiB")
    if limits.processes:
        if os.geteuid() == 0:
            applied.append("processes: not enforceable for root (RLIMIT_NPROC does not bind root)")
        else:
            _lower(resource.RLIMIT_NPROC, _user_tasks() + int(limits.processes))
            applied.append(f"processes +{int(limits.processes)}")
    return applied


# -- network -----------------------------------------------------------------------------------

def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def isolate_network() -> str:
    """Move this process into a new network namespace with no interface up; says how it went."""
    libc = _libc()
    if libc.unshare(_CLONE_NEWNET) == 0:
        return "network namespace"
    first = os.strerror(ctypes.get_errno())
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        try:  # keep our own uid/gid inside the user namespace
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        except OSError:
            pass
        return "network namespace (in a user namespace)"
    return f"no network namespace ({first}; {os.strerror(ctypes.get_errno())}): Python sockets refused only"


# -- files (Landlock) --------------------------------------------------------------------------

_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446  # the same on x86_64 and aarch64
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE
_READ = _FS_READ_FILE | _FS_READ_DIR


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where Landlock is missing or disabled."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, int(version))


def default_read_roots(extra: list[str]) -> list[str]:
    """System, Python and project folders a candidate's process may read."""
    roots = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/sys", "/dev", "/run",
             "/var/lib", sys.prefix, sys.base_prefix, sys.exec_prefix]
    roots += [p for p in sys.path if p]
    cuda = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda:
        roots.append(cuda)
    roots += extra
    out: list[str] = []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.exists(real) and real not in out:
            out.append(real)
    return out


def _proc_entries() -> list[str]:
    """``/proc`` minus other processes: its non-numeric entries and this process's own folder."""
    entries = [f"/proc/{e}" for e in os.listdir("/proc") if not e.isdigit() and e not in ("self", "thread-self")]
    return entries + [f"/proc/{os.getpid()}"]


def restrict_files(read_roots: list[str], write_roots: list[str]) -> str:
    """Shut this process (and what it starts) into the given folders with Landlock."""
    abi = landlock_abi()
    if abi < 1:
        return "no Landlock in this kernel: file access limited by the Python audit hook only"
    handled = sum(1 << b for b in range(13)) & ~_FS_EXECUTE  # processes may run; what they touch is limited
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    attr = ctypes.c_uint64(handled)
    ruleset = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"Landlock ruleset refused ({os.strerror(ctypes.get_errno())}): audit hook only"
    try:
        rules = [(p, _READ) for p in read_roots] + [(p, _READ) for p in _proc_entries()]
        rules += [(p, handled) for p in write_roots] + [(f"/proc/{os.getpid()}", _READ | _FS_WRITE_FILE)]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    access &= _FILE_RIGHTS
                rule = _PathBeneath(access & handled, fd)
                libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule),
                             ctypes.c_uint32(0))
            finally:
                os.close(fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required to restrict oneself
            return f"no_new_privs refused ({os.strerror(ctypes.get_errno())}): audit hook only"
        if libc.syscall(_SYS_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return f"Landlock refused ({os.strerror(ctypes.get_errno())}): audit hook only"
    finally:
        os.close(ruleset)
    return f"Landlock ABI {abi}"


# -- the Python audit hook ------------------------------------------------------------------

class _Hook:
    """State of the audit hook; one per process (an audit hook cannot be removed)."""

    def __init__(self) -> None:
        self.armed = False
        self.read_roots: tuple[str, ...] = ()
        self.write_roots: tuple[str, ...] = ()
        self.violations: list[str] = []
        self.lock = threading.Lock()
        self.busy = threading.local()
        self.allowed_spawns = 0  # compiler processes the hook let through (Triton's ptxas, nvcc...)


_HOOK = _Hook()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
                "os.link", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
_SPAWN_EVENTS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "pty.spawn"}


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _readable(path: str) -> bool:
    if path.startswith("/proc/"):
        head = path.split("/")[2]
        return not head.isdigit() or head == str(os.getpid())
    return _under(path, _HOOK.read_roots) or _under(path, _HOOK.write_roots)


def _refuse(what: str) -> None:
    with _HOOK.lock:
        if len(_HOOK.violations) < 50:
            _HOOK.violations.append(what)
    raise PermissionError(f"sandbox: {what} is not allowed in a candidate")


def _check_path(raw: Any, write: bool, event: str) -> None:
    if isinstance(raw, int) or raw is None:
        return
    path = os.fsdecode(raw)
    if path.startswith("/proc/self") or path.startswith("/proc/thread-self"):
        path = f"/proc/{os.getpid()}" + path.split("self", 1)[1]
    path = os.path.realpath(path) if not path.startswith("/proc/") else os.path.normpath(path)
    if write and not _under(path, _HOOK.write_roots) and path != "/dev/null":
        _refuse(f"{event}: writing {path}")
    if not write and not _readable(path):
        _refuse(f"{event}: reading {path}")


def _tool(program: Any) -> bool:
    if isinstance(program, (list, tuple)):
        program = program[0] if program else ""
    text = os.fsdecode(program or b"").strip()
    if " " in text and not os.path.exists(text):  # a shell command line: its program, if nothing chained
        if any(c in text for c in ";&|`$<>\n("):
            return False
        text = text.split()[0]
    name = os.path.basename(text)
    return name in COMPILER_TOOLS or name.startswith(("python", "x86_64-linux-gnu-", "aarch64-linux-gnu-"))


def _called_by_candidate() -> bool:
    """Whether the Python frame that raised the current event is the candidate's own code."""
    frame = sys._getframe(2)  # 0: this function, 1: _audit, 2: the frame running the audited call
    return str(frame.f_globals.get("__name__", "")).startswith(MODULE_PREFIX)


def _audit(event: str, args: tuple) -> None:
    if not _HOOK.armed or getattr(_HOOK.busy, "on", False):
        return
    _HOOK.busy.on = True  # realpath and friends raise their own events
    try:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            write = bool(mode and any(c in str(mode) for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            _check_path(path, write, "open")
        elif event in _PATH_EVENTS:
            _check_path(args[0] if args else None, True, event)
        elif event.startswith("socket.") and event not in ("socket.gethostname", "socket.sethostname"):
            _refuse(f"network access ({event}{' ' + repr(args[1]) if len(args) > 1 else ''})")
        elif event == "subprocess.Popen":
            executable, argv = args[0], args[1]
            if not _tool(executable or argv):
                _refuse(f"starting a process ({os.fsdecode((argv or [executable])[0]) if argv else executable})")
            _HOOK.allowed_spawns += 1
        elif event in _SPAWN_EVENTS:
            if event in ("os.exec", "os.posix_spawn", "os.spawn") and args and _tool(args[0]):
                return
            _refuse(f"starting a process ({event})")
        elif event in ("compile", "exec") and _called_by_candidate():
            # Code built from a string at run time (eval, exec, compile) hides imports and names
            # from the static check; libraries the candidate calls may still do it themselves.
            _refuse(f"running code built from a string ({'eval/exec' if event == 'exec' else 'compile'})")
        elif event == "sys.addaudithook":
            _refuse("adding an audit hook")
        elif event in ("resource.setrlimit", "resource.prlimit"):
            _refuse(f"changing resource limits ({event})")
    finally:
        _HOOK.busy.on = False


def install_hook(read_roots: list[str], write_roots: list[str]) -> None:
    """Install the (unarmed) audit hook; ``arm()`` turns it on before candidate code runs."""
    _HOOK.read_roots = tuple(os.path.realpath(r) for r in read_roots)
    _HOOK.write_roots = tuple(os.path.realpath(r) for r in write_roots)
    if not getattr(_HOOK, "installed", False):
        sys.addaudithook(_audit)
        _HOOK.installed = True  # type: ignore[attr-defined]


def arm() -> None:
    """From here on, every refused access is recorded against the candidate."""
    _HOOK.armed = True


def violations() -> list[str]:
    """Accesses the candidate attempted and the sandbox refused."""
    with _HOOK.lock:
        return list(_HOOK.violations)


def violation_reason() -> str | None:
    found = violations()
    if not found:
        return None
    more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
    return "the candidate tried to leave its sandbox: " + "; ".join(found[:3]) + more


@dataclass(frozen=True)
class Census:
    """This process's children: live ones, and what finished ones cost (seen from native code too)."""

    live: frozenset[int]
    finished: tuple[float, int]  # (CPU seconds, page faults) of waited-for children
    allowed: int


def census() -> Census:
    live: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{os.getpid()}/task"):
            text = Path(f"/proc/{os.getpid()}/task/{tid}/children").read_text()
            live.update(int(p) for p in text.split())
    except OSError:
        pass
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Census(frozenset(live), (usage.ru_utime + usage.ru_stime, usage.ru_minflt), _HOOK.allowed_spawns)


def spawned_since(before: Census) -> str | None:
    """A process started since ``before`` that the audit hook did not let through (native code)."""
    after = census()
    if after.allowed != before.allowed:
        return None  # a compiler ran in this window (Triton's first call): cannot tell them apart
    new = after.live - before.live
    if new or after.finished != before.finished:
        what = f"pid {sorted(new)[0]}" if new else "one that has already exited"
        reason = f"starting a process from native code ({what}; e.g. system(), fork(), popen())"
        with _HOOK.lock:
            _HOOK.violations.append(reason)
        return reason
    return None


def enter(spec: SandboxSpec) -> list[str]:
    """Shut the current process in (before any candidate code); returns the layers in effect."""
    work, cache = Path(spec.workdir), Path(spec.cache_dir)
    work.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    for path in cache_dirs(cache).values():
        Path(path).mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    tempfile.tempdir = str(work)  # the fork server may have cached /tmp
    layers = [f"cwd {work}"]
    limits = Limits(**spec.limits)
    layers += apply_limits(limits)
    if spec.network:
        layers.append(isolate_network())
    read_roots = default_read_roots(spec.read_roots + [str(cache), str(work)])
    write_roots = [str(work), str(cache), "/dev"]
    if spec.files:
        layers.append(restrict_files(read_roots, write_roots))
    install_hook(read_roots, write_roots)
    global LAYERS
    LAYERS = "; ".join(layers)
    return layers
