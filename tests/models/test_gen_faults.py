"""tools/gen_faults.py: the committed rtl/fault_info_pkg.sv is what the generator makes from
models.vtd.FAULT_INFO, and its case items, read back from the text, give for every fault reason what
FAULT_INFO says and what the golden model's Translation.response / .logged answer."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import pytest

import tools.gen_faults as gen
from models.iommu import KINDS, Request, Translation
from models.vtd import FAULT_INFO, FaultReason, Response
from tb.svstruct import SvPackage

PKG = gen.ROOT / "rtl" / gen.PKG_FILE

#: name -> parameter list of every function of the package (the API the RTL blocks call).
API = {
    "fault_qualified": "input logic [7:0] fr",
    "fault_rsp_untranslated": "input logic [7:0] fr, input logic has_pasid",
    "fault_rsp_translation": "input logic [7:0] fr",
    "fault_logged": "input logic [7:0] fr, input logic translation, input logic fpd",
    "fault_rsp_page_request": "input logic [7:0] fr",
}

_FUNCTION = re.compile(r"function automatic (\w+) (\w+)\((.*?)\);\n(.*?)endfunction", re.S)
_ITEM = re.compile(r"^\s*(8'h[0-9A-F]{2}|default): return (.+?);\s*// (.+)$", re.M)


def parse_functions(text: str) -> dict[str, tuple[str, str, dict]]:
    """name -> (return type, parameters, {code (None for default): (expression, comment)})."""
    out = {}
    for rtype, name, params, body in _FUNCTION.findall(text):
        items = {}
        for label, expr, comment in _ITEM.findall(body):
            code = None if label == "default" else int(label[3:], 16)
            assert code not in items, f"{name}: two items for {label}"
            items[code] = (expr, comment)
        assert len(items) == body.count("return"), f"{name}: a case item the regex does not read"
        out[name] = (rtype, params, items)
    return out


FUNCS = parse_functions(PKG.read_text())


def rsp(r: Response | None) -> str:
    return "RSP_NONE" if r is None else f"RSP_{r.name}"


def untranslated(expr: str, has_pasid: bool) -> str:
    m = re.fullmatch(r"has_pasid \? (RSP_\w+) : (RSP_\w+)", expr)
    assert m, f"unexpected fault_rsp_untranslated item {expr!r}"
    return m[1] if has_pasid else m[2]


def logged(expr: str, translation: bool, fpd: bool) -> bool:
    """Evaluate a fault_logged item: an AND of 1'b1 / !fpd / !translation terms."""
    value = {"1'b1": True, "!fpd": not fpd, "!translation": not translation}
    terms = expr.split(" && ")
    assert set(terms) <= set(value), f"unexpected fault_logged item {expr!r}"
    return all(value[t] for t in terms)


def test_committed_file_is_up_to_date():
    assert PKG.read_text() == gen.generate(), (
        f"rtl/{gen.PKG_FILE} differs from what tools/gen_faults.py makes from models.vtd.FAULT_INFO: run "
        f"`python tools/gen_faults.py` (never edit the generated file)")


def test_banner_and_package():
    text = PKG.read_text()
    lines = text.splitlines()
    assert lines[:3] == ["`resetall", "`timescale 1ns / 1ps", "`default_nettype none"]
    assert gen.BANNER in lines[:8] and "do not edit" in gen.BANNER and "models.vtd.FAULT_INFO" in gen.BANNER
    assert "package fault_info_pkg;" in lines and lines[-1] == "`resetall"


def test_response_enum():
    """RSP_NONE = 0 plus one value per models.vtd.Response member, in 3 bits."""
    width, values = SvPackage(PKG).enums["fault_rsp_e"]
    assert width == 3
    assert values[0] == "RSP_NONE"
    assert sorted(values.values()) == sorted(["RSP_NONE"] + [f"RSP_{m.name}" for m in Response])


def test_one_case_item_per_reason():
    assert {name: params for name, (_, params, _) in FUNCS.items()} == API
    assert {name: rtype for name, (rtype, _, _) in FUNCS.items()} == {
        "fault_qualified": "logic", "fault_logged": "logic", "fault_rsp_untranslated": "fault_rsp_e",
        "fault_rsp_translation": "fault_rsp_e", "fault_rsp_page_request": "fault_rsp_e"}
    for name, (_, _, items) in FUNCS.items():
        assert set(items) == {r.value for r in FaultReason} | {None}, name
        for reason in FaultReason:
            assert items[reason.value][1] == reason.name, (name, reason)


@pytest.mark.parametrize("reason", list(FaultReason), ids=lambda r: r.name)
def test_columns_follow_fault_info(reason):
    info = FAULT_INFO[reason]
    assert FUNCS["fault_qualified"][2][reason][0] == ("1'b1" if info.qualified else "1'b0")
    assert FUNCS["fault_rsp_translation"][2][reason][0] == rsp(info.tr)
    assert FUNCS["fault_rsp_page_request"][2][reason][0] == rsp(info.pr)


@pytest.mark.parametrize("reason", list(FaultReason), ids=lambda r: r.name)
def test_functions_equal_the_model_translation(reason):
    """fault_rsp_untranslated / fault_logged against Translation.response / .logged of the golden model,
    for every request kind, with and without PASID, with and without FPD."""
    expr_rsp = FUNCS["fault_rsp_untranslated"][2][reason][0]
    expr_log = FUNCS["fault_logged"][2][reason][0]
    for kind, has_pasid, fpd in itertools.product(KINDS, (False, True), (False, True)):
        req = Request(kind, rid=0x0100, addr=0x1000, pasid=5 if has_pasid else None)
        t = Translation(req, fault=reason, fpd=fpd)
        case = (reason.name, kind, has_pasid, fpd)
        translation = kind == "translation"
        assert logged(expr_log, translation, fpd) == t.logged, case
        if not translation:
            assert untranslated(expr_rsp, has_pasid) == rsp(t.response), case


def test_codes_that_are_no_fault_reason():
    """default items: not qualified, UR for an untranslated request, nothing else applies."""
    default = {name: items[None][0] for name, (_, _, items) in FUNCS.items()}
    assert default["fault_qualified"] == "1'b0"
    assert untranslated(default["fault_rsp_untranslated"], False) == "RSP_UR"
    assert untranslated(default["fault_rsp_untranslated"], True) == "RSP_UR"
    assert default["fault_rsp_translation"] == default["fault_rsp_page_request"] == "RSP_NONE"
    assert [logged(default["fault_logged"], tr, fpd) for tr in (0, 1) for fpd in (0, 1)] == [1, 1, 0, 0]


def test_cli_writes_and_checks(tmp_path):
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1  # no file yet
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / gen.PKG_FILE).read_text() == gen.generate()
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / gen.PKG_FILE).write_text(gen.generate().replace("RSP_IR;", "RSP_UR;", 1))
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1
    run = subprocess.run([sys.executable, "tools/gen_faults.py", "--check"], cwd=gen.ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
