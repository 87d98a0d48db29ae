"""The models table users read is what the code measures: the docs generate it (docs/hooks.py) and the
README carries the same table; both agree with `epsanet models`."""
import importlib.util

from common import REPO

from epsanet.cli import main

spec = importlib.util.spec_from_file_location("epsanet_docs_hooks", REPO / "docs" / "hooks.py")
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)


def table(text: str, header: str) -> list:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def columns(rows: list, *names: str) -> dict:
    """model -> the named columns of a markdown table (first column: the model, in backticks or not)."""
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    out = {}
    for row in rows[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        out[cells[0].split()[0].strip("`")] = tuple(cells[header.index(n)] for n in names)
    return out


def test_the_docs_model_page_is_generated_not_hand_kept():
    text = (REPO / "docs" / "models.md").read_text()
    assert hooks.MODELS_TABLE_MARKER in text
    assert "| model |" not in text


def test_the_docs_numbers_are_what_epsanet_models_prints(capsys):
    assert main(["models", "--format", "markdown"]) == 0
    printed = columns(table(capsys.readouterr().out, "| model |"), "params", "GMACs @224", "paper top-1")
    generated = {r.name: (f"{r.params:,}", f"{r.gmacs:.2f}", f"{r.info['paper_top1']:.2f}"
                          if r.info.get("paper_top1") is not None else "-") for r in hooks.model_rows()}
    assert generated == printed


def test_the_readme_model_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text()
    assert hooks.readme_models_table() in readme, "regenerate it with `python docs/hooks.py`"


def test_the_table_names_the_official_code_and_its_licence(capsys):
    assert main(["models", "s*_resnet50", "--format", "markdown"]) == 0
    rows = {line.split(" | ")[0].strip("| "): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "[wofmanaf/SA-Net](https://github.com/wofmanaf/SA-Net) | no licence file" in rows["sa_resnet50"]
    assert "[hujie-frank/SENet](https://github.com/hujie-frank/SENet) | Apache-2.0" in rows["se_resnet50"]
