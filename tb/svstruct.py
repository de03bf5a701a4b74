"""Read packed-struct layouts and enums from the RTL package, so the testbench never restates them.

``SvPackage(path)`` parses ``typedef enum logic [..] {...} name_e;`` and ``typedef struct packed {...}
name_t;`` declarations (one member per line, ``logic``/``logic [hi:lo]``/an enum type declared before).
``pkg.unpack("tlp_hdr_t", value)`` turns the flat integer a signal reads as into a dict of members;
enum members come back as their names. ``pkg.pack(struct, values)`` is the inverse, for driving ports.
"""

from __future__ import annotations

import re
from pathlib import Path

_ENUM = re.compile(r"typedef\s+enum\s+logic\s*\[(\d+):(\d+)\]\s*\{(.*?)\}\s*(\w+)\s*;", re.S)
_STRUCT = re.compile(r"typedef\s+struct\s+packed\s*\{(.*?)\}\s*(\w+)\s*;", re.S)
_MEMBER = re.compile(r"^\s*(\w+)\s*(?:\[(\d+):(\d+)\])?\s+(\w+)\s*;")
_ENUM_ITEM = re.compile(r"(\w+)\s*=\s*\d*'([dhb])([0-9a-fA-F_]+)")
_BASE = {"d": 10, "h": 16, "b": 2}


class SvPackage:
    def __init__(self, path: Path):
        text = re.sub(r"//[^\n]*", "", Path(path).read_text())
        self.enums: dict[str, tuple[int, dict[int, str]]] = {}
        for hi, lo, body, name in _ENUM.findall(text):
            values = {}
            for item, base, val in _ENUM_ITEM.findall(body):
                values[int(val.replace("_", ""), _BASE[base])] = item
            self.enums[name] = (int(hi) - int(lo) + 1, values)
        self.structs: dict[str, list[tuple[str, int, str | None]]] = {}
        for body, name in _STRUCT.findall(text):
            members = []
            for line in body.splitlines():
                m = _MEMBER.match(line)
                if not m:
                    continue
                typ, hi, lo, member = m.groups()
                if typ == "logic":
                    width = int(hi) - int(lo) + 1 if hi is not None else 1
                    members.append((member, width, None))
                elif typ in self.enums:
                    members.append((member, self.enums[typ][0], typ))
                elif typ in self.structs:
                    members.append((member, self.width(typ), None))
                else:
                    raise ValueError(f"{path}: unknown member type {typ!r} in struct {name}")
            self.structs[name] = members

    def width(self, struct: str) -> int:
        return sum(w for _, w, _ in self.structs[struct])

    def unpack(self, struct: str, value: int) -> dict:
        out = {}
        pos = self.width(struct)
        for member, width, enum in self.structs[struct]:  # first member is the most significant
            pos -= width
            v = (value >> pos) & ((1 << width) - 1)
            out[member] = self.enums[enum][1].get(v, v) if enum else v
        return out

    def pack(self, struct: str, values: dict, fill_missing: bool = False) -> int:
        """Inverse of ``unpack``: the integer a packed-struct port takes (first member most significant).
        Enum members may be given by name. Unknown names are an error, and so are missing members unless
        ``fill_missing`` (then 0)."""
        unknown = set(values) - {m for m, _, _ in self.structs[struct]}
        if unknown:
            raise KeyError(f"{struct} has no member(s) {sorted(unknown)}")
        out = 0
        for member, width, enum in self.structs[struct]:
            v = values.get(member, 0) if fill_missing else values[member]
            if enum and isinstance(v, str):
                v = self.enum_value(enum, v)
            if not 0 <= v < 1 << width:
                raise ValueError(f"{struct}.{member}={v:#x} does not fit in {width} bits")
            out = out << width | v
        return out

    def enum_value(self, enum: str, item: str) -> int:
        for v, n in self.enums[enum][1].items():
            if n == item:
                return v
        raise KeyError(f"{enum} has no item {item}")
