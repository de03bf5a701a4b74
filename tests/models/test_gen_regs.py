"""tools/gen_regs.py: the committed register RTL is what the generator makes from models.vtd.REGISTERS,
the generated constants follow the profile, and the core interface follows the access types and
agrees with what the golden model does on register writes."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tools.gen_regs as gen
from models import tlp
from models.vtd import (
    PROFILE,
    REGISTERS,
    Access,
    CapabilityProfile,
    RegField,
    Register,
    RegisterMap,
    build_registers,
)
from tests.models.iommu_env import Env
from tools.gen_regs import BANNER, HW_WRITTEN_RW, Page, generate

RTL = gen.ROOT / "rtl"


def localparams(text: str) -> dict[str, int]:
    """name -> value of every ``localparam ... NAME = <n>'h<hex>;`` or ``= <decimal>;`` in SV text."""
    out = {}
    for name, value in re.findall(r"localparam\s+[^=;]*?(\w+)\s*=\s*([^;]+);", text):
        value = value.split("//")[0].strip()
        m = re.fullmatch(r"\d+'h([0-9a-fA-F_]+)", value)
        out[name] = int(m.group(1).replace("_", ""), 16) if m else int(value)
    return out


# ================================================================================================
# The committed files
# ================================================================================================


@pytest.mark.parametrize("name", [gen.PKG_FILE, gen.MODULE_FILE])
def test_committed_rtl_is_up_to_date(name):
    committed = (RTL / name).read_text()
    assert committed == generate()[name], (
        f"rtl/{name} differs from what tools/gen_regs.py makes from models.vtd.REGISTERS: run "
        f"`python tools/gen_regs.py` (never edit the generated file)")


@pytest.mark.parametrize("name", [gen.PKG_FILE, gen.MODULE_FILE])
def test_generated_files_carry_the_banner(name):
    lines = (RTL / name).read_text().splitlines()
    assert lines[0] == "`resetall"
    assert BANNER in lines[:8]
    assert "do not edit" in BANNER and "models.vtd.REGISTERS" in BANNER


def test_package_constants_follow_the_profile():
    """Offsets, VER/CAP/ECAP and the FRCD count in the package against the description and profile."""
    p = localparams((RTL / gen.PKG_FILE).read_text())
    for r in REGISTERS:
        assert p[f"{r.name}_OFFSET"] == r.offset, r.name
    assert p["VER_VALUE"] == PROFILE.ver_value() == 0x80  # VT-d 8.0 (vtd §1.2)
    assert p["CAP_VALUE"] == PROFILE.cap_value()
    assert p["ECAP_VALUE"] == PROFILE.ecap_value()
    assert p["NUM_FRCD"] == PROFILE.nfr + 1 == 4
    assert p["FRCD0_OFFSET"] == 0x220 and p["IOTLB_REG_OFFSET"] == 0xF8  # FRO=0x22, IRO=0x0F (vtd §1.1)
    assert p["REG_ADDR_W"] == 12


@pytest.mark.parametrize("changes", [
    dict(nfr=0),
    dict(nfr=7, fro=0x40),
    dict(iro=0x20, fs5lp=0, pss=15),
])
def test_other_profiles(changes):
    profile = dataclasses.replace(PROFILE, **changes)
    files = generate(profile, "test")
    p = localparams(files[gen.PKG_FILE])
    assert p["NUM_FRCD"] == profile.nfr + 1
    assert p["CAP_VALUE"] == profile.cap_value() and p["ECAP_VALUE"] == profile.ecap_value()
    for n in range(profile.nfr + 1):
        assert p[f"FRCD{n}_OFFSET"] == profile.fro * 16 + 16 * n
    assert f"FRCD{profile.nfr + 1}_OFFSET" not in p
    assert p["IVA_OFFSET"] == profile.iro * 16 and p["IOTLB_REG_OFFSET"] == profile.iro * 16 + 8
    page = Page(profile)
    assert page.reg2hw.member("frcd").count == profile.nfr + 1
    assert page.hw2reg.member("frcd").count == profile.nfr + 1
    assert f"we_frcd{profile.nfr}_3" in files[gen.MODULE_FILE]
    assert "// profile: test;" in files[gen.PKG_FILE]


def test_cli_writes_the_files(tmp_path):
    assert gen.main(["--out", str(tmp_path)]) == 0
    for name, text in generate().items():
        assert (tmp_path / name).read_text() == text
    with pytest.raises(SystemExit, match="not a models.vtd.CapabilityProfile"):
        gen.main(["--profile", "models.vtd:REGISTERS", "--out", str(tmp_path)])


# ================================================================================================
# The core interface
# ================================================================================================


def _members(struct) -> set[str]:
    return {m.name for m in struct.members}


def test_interface_follows_access_types():
    """Per register, from its access types alone: reg2hw holds every RW, RW1C(S) and (outside VER/CAP/
    ECAP) RO/ROS field, and value + _qe of every WO field; hw2reg has a de/d pair for every RO/ROS and
    RW1C(S) field outside VER/CAP/ECAP and for the RW fields hardware writes."""
    page = Page()
    for r in REGISTERS:
        group = "frcd" if r.name.startswith("FRCD") else r.name.lower()
        constant = r.name in ("VER", "CAP", "ECAP")
        want_r2h, want_h2r = set(), set()
        for f in r.fields:
            if constant:
                assert f.access == Access.RO
                continue
            if f.access == Access.WO:
                want_r2h |= {f.name, f"{f.name}_qe"}
            else:
                want_r2h.add(f.name)
            hardware = f.access in (Access.RO, Access.ROS, Access.RW1C, Access.RW1CS)
            if hardware or (group, f.name) in HW_WRITTEN_RW:
                want_h2r |= {f.name, f"{f.name}_de"}
        if group in gen.PULSE_REGS:
            want_r2h.add("qe")
        got_r2h = _members(page.reg2hw.member(group).struct) if want_r2h else set()
        got_h2r = _members(page.hw2reg.member(group).struct) if want_h2r else set()
        assert got_r2h == want_r2h, r.name
        assert got_h2r == want_h2r, r.name
        if not want_r2h:
            assert group not in _members(page.reg2hw)
        if not want_h2r:
            assert group not in _members(page.hw2reg)
        if want_r2h:  # every field member has the field's width
            s = page.reg2hw.member(group).struct
            for f in r.fields:
                assert s.member(f.name).width == f.width


def test_write_pulses_cover_the_model_hooks():
    """Every register whose write the golden model acts on (Iommu's write hooks) pulses in reg2hw:
    a register qe, or per-field _qe for the all-WO GCMD. Beyond those, only PQH (for the PRQ writer)
    and the WO fields of IVA (which the model ignores: legacy only) pulse."""
    page = Page()
    hooked = {("frcd" if n.startswith("FRCD") else n.lower()) for n in Env().iommu._hooks}
    pulsing = set()
    for g in page.groups:
        if g.pulse or any(f.access == Access.WO for f in g.fields):
            pulsing.add(g.name)
    assert hooked <= pulsing
    assert pulsing - hooked == {"pqh", "iva"}
    assert "gcmd" not in gen.PULSE_REGS  # GCMD pulses per field: a write of byte 2 only is not a TE=0


def test_hw_written_rw_fields_are_those_the_model_writes():
    """Record every RW field the golden model changes from the hardware side while it completes a
    register-based invalidation (CCMD, IOTLB_REG: ICC/IVT drop, vtd §1.7) and queues a page request
    (PQT advances, vtd §1.11): exactly HW_WRITTEN_RW."""
    env = Env()
    env.enable()
    env.bind(0x0100, 5, env.new_mm())
    prq = env.alloc.alloc(4096)
    env.wr("PQA", prq)
    env.wr("PQH", 0)
    env.wr("PQT", 0)
    seen = set()
    iommu = env.iommu
    real_set_field, real_set_reg = iommu.set_field, iommu.set_reg

    def set_field(reg, name, value):
        if REGISTERS[reg].field(name).access == Access.RW:
            seen.add((reg.lower(), name))
        real_set_field(reg, name, value)

    def set_reg(name, value):
        r = REGISTERS[name]
        seen.update((name.lower(), f.name) for f in r.fields
                    if f.access == Access.RW and f.get(value) != f.get(iommu.regs[name]))
        real_set_reg(name, value)

    iommu.set_field, iommu.set_reg = set_field, set_reg
    env.wr("CCMD", 1 << 63 | 1 << 61)  # ICC, global
    env.wr("IOTLB_REG", 1 << 63 | 1 << 60)  # IVT, global
    request = tlp.PageRequest(requester_id=0x0100, pasid=5, address=0x1000, prg_index=1, l=1, r=1)
    iommu.receive_tlp(request.encode())
    assert env.rd("CCMD") >> 63 == 0 and env.rd("IOTLB_REG") >> 63 == 0 and env.rd("PQT") == 32
    assert seen == set(HW_WRITTEN_RW)


def test_struct_layout_is_systemverilog_packing():
    """First member most significant; a packed array's element 0 in the least significant bits."""
    page = Page()
    r2h, h2r = page.reg2hw, page.hw2reg
    assert r2h.members[0].name == "gcmd" and r2h.members[0].struct.members[0].name == "te"
    assert r2h.pack({"gcmd": {"te": 1}}) == 1 << (r2h.width - 1)
    assert h2r.members[-1].name == "frcd" and h2r.members[-1].struct.members[-1].name == "fi"
    assert h2r.pack({"frcd": [{"fi": 1}]}) == 1  # FRCD0.FI bit 0 is hw2reg_t bit 0
    frcd_bits = h2r.member("frcd").element_bits
    assert h2r.pack({"frcd": [{}, {"fi": 1}]}) == 1 << frcd_bits
    assert h2r.unpack(1 << frcd_bits)["frcd"][1]["fi"] == 1
    with pytest.raises(KeyError, match="no member"):
        r2h.pack({"gcmd": {"tes": 1}})
    with pytest.raises(ValueError, match="does not fit"):
        r2h.pack({"fsts": {"fri": 0x100}})


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_struct_round_trip(data):
    for s in (Page().reg2hw, Page().hw2reg):
        v = data.draw(st.integers(0, (1 << s.width) - 1))
        assert s.pack(s.unpack(v)) == v


# ================================================================================================
# Descriptions the generator refuses
# ================================================================================================


def _page_with(monkeypatch, extra: Register) -> Page:
    """A Page of a (non-default) profile whose register map also holds ``extra``."""
    def build(profile: CapabilityProfile) -> RegisterMap:
        return RegisterMap([*build_registers(profile), extra])
    monkeypatch.setattr(gen, "build_registers", build)
    return Page(dataclasses.replace(PROFILE, nfr=0))


def test_refuses_keyword_field_names(monkeypatch):
    reg = Register("XREG", 0x300, 32, (RegField("int", 3, 0, Access.RW),))
    with pytest.raises(gen.GenError, match="xreg.int: field name is a SystemVerilog keyword"):
        _page_with(monkeypatch, reg)


def test_refuses_generated_name_clash(monkeypatch):
    reg = Register("XREG", 0x300, 32, (RegField("go", 0, 0, Access.WO), RegField("go_qe", 1, 1, Access.RW)))
    with pytest.raises(gen.GenError, match="two members named 'go_qe'"):
        _page_with(monkeypatch, reg)


@pytest.mark.parametrize("table,entry,message", [
    ("HW_WRITTEN_RW", ("gsts", "tes"), "gsts.tes, which is not an RW field"),
    ("HW_WRITTEN_RW", ("pqx", "pqt"), "register 'pqx', which is not in the register page"),
    ("PULSE_REGS", "gsts", "gsts is in PULSE_REGS but software cannot write it"),
    ("PULSE_REGS", "aflog", "PULSE_REGS names 'aflog'"),
    ("CONSTANT_REGS", "FSTS", "constant register FSTS has a field that is not RO"),
])
def test_refuses_inconsistent_tables(monkeypatch, table, entry, message):
    monkeypatch.setattr(gen, table, getattr(gen, table) | {entry})
    with pytest.raises(gen.GenError, match=re.escape(message)):
        Page()
