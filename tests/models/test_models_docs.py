"""docs/models.md shows what the code measures."""
from pathlib import Path

from epsanet.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def first_table(text: str) -> list:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_the_models_table_in_the_docs_is_what_epsanet_models_prints(capsys):
    assert main(["models", "--format", "markdown"]) == 0
    printed = capsys.readouterr().out
    assert first_table(DOCS.read_text()) == first_table(printed), \
        "regenerate it with `python -m epsanet models --format markdown`"


def test_the_table_names_the_official_code_and_its_licence(capsys):
    assert main(["models", "s*_resnet50", "--format", "markdown"]) == 0
    rows = {line.split(" | ")[0].strip("| "): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "[wofmanaf/SA-Net](https://github.com/wofmanaf/SA-Net) | no licence file" in rows["sa_resnet50"]
    assert "[hujie-frank/SENet](https://github.com/hujie-frank/SENet) | Apache-2.0" in rows["se_resnet50"]
