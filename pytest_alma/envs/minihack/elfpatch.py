"""Edit NetHack's per-instance library so that its clock is a constant (x86-64 Linux ELF).

nle loads a private copy of ``libnethack.so`` for every game (``Nethack.dlpath``, a temporary
file) and loads it afresh from that file at every reset. NetHack reads the clock through two C
library functions only: ``time()`` (the birthday of the hero, which picks shop prices, shopkeeper
names and anthole monsters, and the "now" behind the moon phase, Friday the 13th, night and
midnight) and ``localtime()`` (which turns it into a date in the machine's time zone). In the
copy, and in nothing else, we

- replace the ``time`` PLT entry with ``*t = EPOCH; return EPOCH`` (14 bytes of code), and
- rename the imported symbol ``localtime`` to ``gmtime`` (same signature, no time zone).

Every check that the layout is the one this code understands (a lazy-binding ``.plt`` entry
``jmp *GOT(%rip)`` for ``time``, no other reference to ``time``'s address, a ``localtime``
name that no other symbol shares) raises :class:`ClockPatchError` instead of guessing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_EM_X86_64 = 62
_R_X86_64_GLOB_DAT = 6
_R_X86_64_JUMP_SLOT = 7
_PLT_ENTRY = 16
_JMP_GOT = b"\xff\x25"  # jmp *disp32(%rip)


class ClockPatchError(RuntimeError):
    """The library is not laid out as this patcher expects; nothing was changed."""


@dataclass(frozen=True)
class _Section:
    name: str
    addr: int
    offset: int
    size: int
    entsize: int


def time_stub(epoch: int) -> bytes:
    """x86-64 code for ``time_t time(time_t *t)`` that always answers ``epoch``."""
    if not 0 < epoch < 2**31:
        raise ValueError(f"the pinned epoch must be in 1..2**31-1 seconds, got {epoch}")
    code = (
        b"\xb8"
        + struct.pack("<I", epoch)  # mov $epoch, %eax (zero-extends into %rax)
        + b"\x48\x85\xff"  # test %rdi, %rdi
        + b"\x74\x03"  # je 1f (time(NULL) only returns)
        + b"\x48\x89\x07"  # mov %rax, (%rdi)
        + b"\xc3"  # 1: ret
    )
    return code + b"\xcc" * (_PLT_ENTRY - len(code))  # int3 padding: never executed


def _sections(data: bytes) -> dict[str, _Section]:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ClockPatchError("not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", data, 18)
    if machine != _EM_X86_64:
        raise ClockPatchError(f"ELF machine {machine} is not x86-64 ({_EM_X86_64})")
    shoff, shentsize, shnum, shstrndx = (
        struct.unpack_from("<Q", data, 0x28)[0],
        *struct.unpack_from("<HHH", data, 0x3A),
    )
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = raw[shstrndx]
    out: dict[str, _Section] = {}
    for name_off, _type, _flags, addr, offset, size, _link, _info, _align, entsize in raw:
        start = strtab[4] + name_off
        name = data[start : data.index(b"\0", start)].decode("ascii", "replace")
        out[name] = _Section(name, addr, offset, size, entsize)
    return out


def _symbols(data: bytes, sections: dict[str, _Section]) -> list[tuple[str, int, int]]:
    """(name, st_name, st_shndx) of every dynamic symbol, by index."""
    dynsym, dynstr = sections[".dynsym"], sections[".dynstr"]
    out = []
    for i in range(dynsym.size // dynsym.entsize):
        st_name, _info, _other, shndx = struct.unpack_from(
            "<IBBH", data, dynsym.offset + i * dynsym.entsize
        )
        start = dynstr.offset + st_name
        out.append((data[start : data.index(b"\0", start)].decode("latin-1"), st_name, shndx))
    return out


def _relocations(data: bytes, section: _Section) -> list[tuple[int, int, int]]:
    """(r_offset, type, symbol index) of a RELA section."""
    out = []
    for i in range(section.size // 24):
        r_offset, r_info, _addend = struct.unpack_from("<QQq", data, section.offset + i * 24)
        out.append((r_offset, r_info & 0xFFFFFFFF, r_info >> 32))
    return out


def _imported(symbols: list[tuple[str, int, int]], name: str) -> int:
    found = [i for i, (n, _off, shndx) in enumerate(symbols) if n == name and shndx == 0]
    if len(found) != 1:
        raise ClockPatchError(f"expected one imported symbol {name!r}, found {len(found)}")
    return found[0]


def is_patched(data: bytes, epoch: int) -> bool:
    """Whether ``data`` already has this exact clock (the patch is applied once per file)."""
    return time_stub(epoch) in data and _has_import(data, "gmtime")


def _has_import(data: bytes, name: str) -> bool:
    try:
        sections = _sections(data)
        return any(n == name and shndx == 0 for n, _o, shndx in _symbols(data, sections))
    except (ClockPatchError, KeyError, ValueError, struct.error):
        return False


def patched(data: bytes, epoch: int) -> bytes:
    """A copy of the library ``data`` whose ``time()`` answers ``epoch`` and whose dates are UTC.

    Raises:
        ClockPatchError: the file is not an x86-64 ELF library laid out as expected.
    """
    try:
        sections = _sections(data)
        dynstr, plt = sections[".dynstr"], sections[".plt"]
        rela_plt, rela_dyn = sections[".rela.plt"], sections.get(".rela.dyn")
    except KeyError as missing:
        raise ClockPatchError(f"the library has no {missing} section") from None
    symbols = _symbols(data, sections)
    time_index = _imported(symbols, "time")
    local_index = _imported(symbols, "localtime")
    if any(n == "gmtime" for n, _o, _s in symbols):
        raise ClockPatchError("the library already imports gmtime; renaming would be ambiguous")

    # Every call to time() must go through its PLT entry: refuse an address taken via the GOT.
    others = _relocations(data, rela_dyn) if rela_dyn is not None else []
    if any(sym == time_index and kind == _R_X86_64_GLOB_DAT for _o, kind, sym in others):
        raise ClockPatchError("time() is also called through the GOT; the PLT patch would miss it")
    slots = [
        r_offset
        for r_offset, kind, sym in _relocations(data, rela_plt)
        if sym == time_index and kind == _R_X86_64_JUMP_SLOT
    ]
    if len(slots) != 1:
        raise ClockPatchError(f"expected one PLT slot for time(), found {len(slots)}")
    entry = None
    for start in range(plt.offset, plt.offset + plt.size, _PLT_ENTRY):
        if data[start : start + 2] == _JMP_GOT:
            (disp,) = struct.unpack_from("<i", data, start + 2)
            if plt.addr + (start - plt.offset) + 6 + disp == slots[0]:
                entry = start
                break
    if entry is None:
        raise ClockPatchError("no '.plt' entry jumps through time()'s GOT slot")

    # Rename localtime -> gmtime in place, unless another name shares those bytes.
    name_off = symbols[local_index][1]
    span = range(name_off, name_off + len(b"localtime") + 1)
    if any(off in span for i, (_n, off, _s) in enumerate(symbols) if i != local_index):
        raise ClockPatchError("the string 'localtime' is shared with another symbol name")
    at = dynstr.offset + name_off

    out = bytearray(data)
    out[entry : entry + _PLT_ENTRY] = time_stub(epoch)
    out[at : at + len(b"localtime\0")] = b"gmtime".ljust(len(b"localtime\0"), b"\0")
    return bytes(out)


__all__ = ["ClockPatchError", "is_patched", "patched", "time_stub"]
