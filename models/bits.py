"""Declarative bit-field structures: the one mechanism every spec structure in ``models`` uses.

A structure is a class with a bit width and named fields::

    class PasidDirEntry(BitStruct):
        WIDTH = 64
        p = Field(0)
        fpd = Field(1)
        smptblptr = Field(63, 12)

The instance keeps the raw integer, so ``from_bytes(b).to_bytes() == b`` holds for every input,
reserved bits included. Fields are read and written as attributes; writing a value that does not
fit raises ``ValueError`` naming the field. Every bit not covered by a field is reserved, and so is
every field declared with ``Reserved``; ``reserved_set()`` names the reserved ranges that are
non-zero (``'rsvd[11:2]'``), so a checker can report them instead of dropping them.

Byte order is little-endian (VT-d in-memory structures: bit n counts from bit 0 of the first
little-endian 64-bit word). Big-endian wire formats (PCIe TLP headers) set ``BYTEORDER = "big"``;
bit 0 is then the least significant bit of the last byte.
"""

from __future__ import annotations

from typing import ClassVar, Iterator


class Field:
    """Bits ``hi`` down to ``lo`` (inclusive) of the structure; ``Field(n)`` is the single bit n."""

    reserved = False

    def __init__(self, hi: int, lo: int | None = None, doc: str = ""):
        if lo is None:
            lo = hi
        if hi < lo or lo < 0:
            raise ValueError(f"bad bit range [{hi}:{lo}]")
        self.hi, self.lo, self.doc = hi, lo, doc
        self.width = hi - lo + 1
        self.mask = (1 << self.width) - 1
        self.name = "?"

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return (obj.raw >> self.lo) & self.mask

    def __set__(self, obj, value):
        value = int(value)
        if value < 0 or value > self.mask:
            raise ValueError(
                f"{type(obj).__name__}.{self.name}: value {value:#x} does not fit in "
                f"{self.width} bit(s) [{self.hi}:{self.lo}]"
            )
        obj.raw = (obj.raw & ~(self.mask << self.lo)) | (value << self.lo)

    @property
    def span(self) -> str:
        return f"[{self.hi}]" if self.hi == self.lo else f"[{self.hi}:{self.lo}]"

    def __repr__(self):
        return f"{type(self).__name__}{self.span} {self.name}"


class Reserved(Field):
    """A named reserved range: must be zero; reported by ``reserved_set()`` when it is not."""

    reserved = True


class BitStruct:
    """Base class of every fixed-width structure. Subclasses set ``WIDTH`` (bits, multiple of 8)."""

    WIDTH: ClassVar[int] = 64
    BYTEORDER: ClassVar[str] = "little"
    _fields: ClassVar[dict[str, Field]] = {}
    _reserved: ClassVar[list[tuple[str, int]]] = []  # (name, mask) including auto-named gaps

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.WIDTH % 8:
            raise TypeError(f"{cls.__name__}.WIDTH must be a multiple of 8")
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                if isinstance(attr, Field):
                    fields[name] = attr
        used = 0
        for f in sorted(fields.values(), key=lambda f: f.lo):
            m = f.mask << f.lo
            if f.hi >= cls.WIDTH:
                raise TypeError(f"{cls.__name__}.{f.name}{f.span} is outside WIDTH={cls.WIDTH}")
            if used & m:
                raise TypeError(f"{cls.__name__}.{f.name}{f.span} overlaps another field")
            used |= m
        cls._fields = dict(sorted(fields.items(), key=lambda kv: kv[1].lo))
        reserved = [(f.name, f.mask << f.lo) for f in cls._fields.values() if f.reserved]
        # every bit no field covers is reserved too, named by its range
        bit = 0
        while bit < cls.WIDTH:
            if not (used >> bit) & 1:
                lo = bit
                while bit < cls.WIDTH and not (used >> bit) & 1:
                    bit += 1
                hi = bit - 1
                name = f"rsvd[{hi}]" if hi == lo else f"rsvd[{hi}:{lo}]"
                reserved.append((name, ((1 << (hi - lo + 1)) - 1) << lo))
            else:
                bit += 1
        cls._reserved = sorted(reserved, key=lambda r: (r[1] & -r[1]).bit_length())

    def __init__(self, raw: int = 0, **fields):
        if raw < 0 or raw >> self.WIDTH:
            raise ValueError(f"{type(self).__name__}: raw value does not fit in {self.WIDTH} bits")
        self.raw = raw
        for name, value in fields.items():
            if name not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, name, value)

    # --- bytes ----------------------------------------------------------------------------------
    @classmethod
    def nbytes(cls) -> int:
        return cls.WIDTH // 8

    @classmethod
    def from_bytes(cls, data: bytes):
        data = bytes(data)
        if len(data) != cls.nbytes():
            raise ValueError(f"{cls.__name__}: expected {cls.nbytes()} bytes, got {len(data)}")
        return cls(int.from_bytes(data, cls.BYTEORDER))

    def to_bytes(self) -> bytes:
        return self.raw.to_bytes(self.nbytes(), self.BYTEORDER)

    def __bytes__(self):
        return self.to_bytes()

    def __int__(self):
        return self.raw

    # --- fields ---------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [n for n, f in cls._fields.items() if not f.reserved]

    def fields(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in self.field_names()}

    def reserved_set(self) -> list[str]:
        """Names of the reserved ranges that hold a non-zero value (empty list when clean)."""
        return [name for name, mask in self._reserved if self.raw & mask]

    @classmethod
    def reserved_mask(cls) -> int:
        m = 0
        for _, mask in cls._reserved:
            m |= mask
        return m

    def qw(self, i: int) -> int:
        """64-bit word i (little-endian structures)."""
        return (self.raw >> (64 * i)) & (2**64 - 1)

    def copy(self, **fields):
        new = type(self)(self.raw)
        for k, v in fields.items():
            setattr(new, k, v)
        return new

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self.fields().items())

    def __eq__(self, other):
        return type(other) is type(self) and other.raw == self.raw

    def __hash__(self):
        return hash((type(self), self.raw))

    def __repr__(self):
        body = ", ".join(f"{n}={v:#x}" for n, v in self.fields().items() if v)
        rs = self.reserved_set()
        if rs:
            body += (", " if body else "") + "RESERVED SET: " + ",".join(rs)
        return f"{type(self).__name__}({body})"


def bits(value: int, hi: int, lo: int) -> int:
    """value[hi:lo] as an integer."""
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def sign_extend(value: int, width: int) -> int:
    sign = 1 << (width - 1)
    return (value & (sign - 1)) - (value & sign)
