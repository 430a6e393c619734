"""A systemd unit's sandbox without systemd: the system call filter and the socket families of
a unit in deploy/systemd/, read from the unit and enforced with seccomp (libseccomp, as systemd
does) on a command run in their place.

    python -m tests.support.sandbox --allow read,write,... --families 1,2,10 -- command ...

installs the filters and executes the command. A system call outside the unit's filter kills
the process (SIGSYS), where systemd would fail the call with `SystemCallErrorNumber=`: a test
sees every one, even one the process would have survived. A socket of another family fails
with EAFNOSUPPORT, as under `RestrictAddressFamilies=`; a system call of another architecture
kills the process, as under `SystemCallArchitectures=native`."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import os
import socket
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

# libseccomp's actions and comparisons (seccomp.h).
ACT_KILL_PROCESS = 0x80000000
ACT_ALLOW = 0x7FFF0000
CMP_LT, CMP_EQ, CMP_GT = 2, 4, 6


def act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def directives(unit: Path, section: str = "Service") -> list[tuple[str, str]]:
    """Every `key=value` of one section, in order and with repeated keys (which systemd
    merges, and a configparser keeps only the last of)."""
    found, current = [], None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            found.append((key.strip(), value.strip()))
    return found


def syscall_groups() -> dict[str, list[str]]:
    """systemd's named system call sets (`@system-service`, ...): each set's members, sets
    among them, as this machine's `systemd-analyze syscall-filter` lists them."""
    listing = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in listing.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def _expand(names: Iterable[str], groups: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    for name in names:
        found |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return found


def allowed_syscalls(filters: Sequence[str], groups: dict[str, list[str]]) -> set[str] | None:
    """The system calls a unit's `SystemCallFilter=` lines allow, as systemd reads them: the
    first line an allow list (with `@default` implied) or a deny list, later lines adding to
    it or (`~`) taking away; an empty line resets. None: no filter."""
    allowed: set[str] | None = None
    denied: set[str] = set()
    for value in filters:
        if not value:
            allowed, denied = None, set()
            continue
        invert = value.startswith("~")
        names = _expand(value.removeprefix("~").split(), groups)
        if allowed is None and not denied:
            if invert:
                denied = names
            else:
                allowed = names | _expand(["@default"], groups)
        elif allowed is not None:
            allowed = allowed - names if invert else allowed | names
        else:
            denied = denied | names if invert else denied - names
    if allowed is None and denied:
        raise ValueError("a deny-list SystemCallFilter= is not emulated here")
    return allowed


def address_families(value: str) -> list[int]:
    """`RestrictAddressFamilies=AF_UNIX AF_INET ...` as numbers (an allow list only)."""
    if value.startswith("~"):
        raise ValueError("a deny-list RestrictAddressFamilies= is not emulated here")
    return sorted(int(getattr(socket, name)) for name in value.split())


def _seccomp() -> ctypes.CDLL:
    # By its soname: find_library would start a process (ldconfig) under the test's eyes.
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        name = ctypes.util.find_library("seccomp")
        if name is None:
            raise
        lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def _checked(result: int, what: str) -> None:
    if result < 0:
        raise OSError(-result, f"seccomp: {what}: {os.strerror(-result)}")


def _rule(lib: ctypes.CDLL, ctx: int, action: int, syscall: int,
          cmps: Sequence[tuple[int, int, int]] = ()) -> None:
    array = (_ArgCmp * max(1, len(cmps)))(*(_ArgCmp(a, op, d, 0) for a, op, d in cmps))
    _checked(lib.seccomp_rule_add_array(ctx, action, syscall, len(cmps), array),
             f"rule for system call {syscall}")


def _load(lib: ctypes.CDLL, ctx: int) -> None:
    try:
        _checked(lib.seccomp_load(ctx), "load")
    finally:
        lib.seccomp_release(ctx)


def install(allowed: set[str] | None, families: Sequence[int] | None,
            refused: Iterable[str] = ()) -> None:
    """Install the filters on this process (and what it executes); no new privileges after.
    A system call in `refused` fails with EPERM, as under systemd, rather than kill."""
    lib = _seccomp()
    # The families first: the system call filter may refuse loading another.
    if families is not None:
        ctx = lib.seccomp_init(ACT_ALLOW)
        number = lib.seccomp_syscall_resolve_name(b"socket")
        no_family = act_errno(errno.EAFNOSUPPORT)
        _rule(lib, ctx, no_family, number, [(0, CMP_LT, families[0])])
        _rule(lib, ctx, no_family, number, [(0, CMP_GT, families[-1])])
        for family in range(families[0] + 1, families[-1]):
            if family not in families:
                _rule(lib, ctx, no_family, number, [(0, CMP_EQ, family)])
        _load(lib, ctx)
    if allowed is not None:
        ctx = lib.seccomp_init(ACT_KILL_PROCESS)
        for name in sorted(allowed):
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # not a system call of this architecture
                _rule(lib, ctx, ACT_ALLOW, number)
        for name in sorted(set(refused) - allowed):
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:
                _rule(lib, ctx, act_errno(errno.EPERM), number)
        _load(lib, ctx)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allow", help="system calls allowed, comma-separated")
    parser.add_argument("--families", help="socket families allowed (numbers), comma-separated")
    parser.add_argument("--refuse", help="system calls refused with EPERM, comma-separated")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    install(set(args.allow.split(",")) if args.allow else None,
            sorted(int(f) for f in args.families.split(",")) if args.families else None,
            args.refuse.split(",") if args.refuse else ())
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
