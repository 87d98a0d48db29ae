"""The documentation site builds strictly, documents every model and public name with the numbers
the code computes, fetches nothing from other hosts and names no issue numbers."""
import html
import re

from common import REPO

import epsanet
from epsanet.cli import main
from epsanet.weights.catalogue import model_info, weights_entries


def cell(value: str) -> re.Pattern:
    return re.compile(rf"<td[^>]*>{re.escape(value)}</td>")


def model_section(site, hooks, name: str) -> str:
    """The HTML of a model's section on its family page: from its heading to the next one."""
    text = (site / "models" / f"{hooks.family_of(model_info(name)['paper_ids'])}.html").read_text()
    start = text.index(f'id="{name}"')
    end = text.find("<h2", start)
    return text[start:end if end != -1 else None]


def test_every_zoo_model_has_its_section_with_the_parameters_gmacs_and_paper_top1_the_code_gives(site, hooks):
    for name in epsanet.list_models():
        model = epsanet.create_model(name, device="meta")
        params, gmacs = epsanet.count_params(model), epsanet.count_macs(model, (3, 224, 224)) / 1e9
        top1 = model_info(name).get("paper_top1")
        section = model_section(site, hooks, name)
        assert cell(f"{params:,}").search(section), name
        assert cell(f"{gmacs:.2f}").search(section), name
        assert cell(f"{top1:.2f}" if top1 is not None else "-").search(section), name
        signature = f"epsanet.{name}(\n    *,\n    weights: Optional["
        assert signature in html.unescape(re.sub(r"<[^>]+>", "", section)), f"{name}: no builder signature"


def test_every_catalogued_weight_is_on_its_model_section_and_the_weights_page_with_its_numbers(site, hooks):
    weights_page = (site / "weights.html").read_text()
    for entry in weights_entries():
        for page in (model_section(site, hooks, entry.model), weights_page):
            row = re.search(rf"<tr>\s*<td[^>]*><code>{re.escape(entry.name)}</code></td>.*?</tr>", page, re.S)
            assert row, entry.name
            assert cell(f"{entry.top1:g}").search(row.group()) and cell(f"{entry.top5:g}").search(row.group())
            assert cell(str(entry.cfg.get("license"))).search(row.group()), entry.name


def test_a_model_without_weights_says_that_none_exist(site, hooks):
    assert "none exist yet" in model_section(site, hooks, "epsanet50_small")


def test_every_family_page_is_in_the_navigation(site, hooks):
    home = (site / "index.html").read_text()
    for page, _title, _paper in hooks.FAMILIES:
        assert f'href="models/{page}.html"' in home, page


def test_every_public_name_has_its_entry_in_the_api_reference(site):
    reference = "".join(p.read_text() for p in (site / "reference").glob("*.html"))
    missing = [name for name in epsanet.__all__ if name != "__version__" and f'id="epsanet.{name}"' not in reference]
    assert not missing
    assert "epsanet.__version__" in (site / "reference" / "index.html").read_text()


def test_the_subpackages_entry_points_have_their_entries(site, hooks):
    for page, paths in hooks.reference_entries().items():
        text = (site / "reference" / f"{page}.html").read_text()
        assert [p for p in paths if f'id="{p}"' not in text] == [], page
    training = hooks.reference_entries()["training"] + hooks.reference_entries()["detection"]
    assert "epsanet.training.engine.train" in training and "epsanet.detection.engine.train" in training


def test_every_attention_module_of_the_registry_has_its_entry(site):
    layers = (site / "reference" / "layers.html").read_text()
    for name in epsanet.list_attention():
        cls = epsanet.layers.get_attention(name)
        assert f'id="{cls.__module__}.{cls.__qualname__}"' in layers, name


# What makes a browser fetch: src/srcset, <link href>, CSS url() and @import.
_FETCHES = re.compile(r"""(?:\bsrc(?:set)?\s*=\s*["']?|<link\b[^>]*\bhref\s*=\s*["']?|url\(\s*["']?|@import\s+["'])"""
                      r"""(?:https?:)?//""", re.I)


def test_the_site_loads_nothing_from_other_hosts(site):
    offending = [f"{path.relative_to(site)}: {m.group()}" for path in site.rglob("*")
                 if path.suffix in (".html", ".css") for m in _FETCHES.finditer(path.read_text())]
    assert offending == []
    assert "fonts.googleapis" not in (site / "index.html").read_text()


def test_no_page_of_the_readme_or_the_docs_names_an_issue_number(site):
    issue = re.compile(r"issue #?[0-9]+", re.I)
    sources = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *site.rglob("*.html")]
    assert [f"{p}: {m.group()}" for p in sources for m in issue.finditer(p.read_text())] == []


def test_the_readme_is_a_landing_page_that_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block[:2]] == [["make", "demo"], ["make", "test"]]


def test_the_weights_tables_show_what_epsanet_weights_prints(site, hooks, capsys):
    assert main(["weights", "--format", "markdown"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    weights_page = (site / "weights.html").read_text()
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        name = cells["weights"]
        model, _, _ = name.partition(".")
        for page in (weights_page, model_section(site, hooks, model)):
            row = re.search(rf"<tr>\s*<td[^>]*><code>{re.escape(name)}</code></td>.*?</tr>", page, re.S).group()
            assert cell(cells["top-1"]).search(row) and cell(cells["top-5"]).search(row), name
            assert cell(cells["eval size (crop)"]).search(row), name


def make_recipe(target: str) -> str:
    """The commands of a Makefile target, continuation lines joined, `$(PY) -m epsanet` as `epsanet`."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    recipe = text.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    return re.sub(r"\s+", " ", recipe.replace("$(PY) -m epsanet", "epsanet"))


def test_the_gallery_names_the_commands_its_make_targets_run():
    gallery = re.sub(r"\s+", " ", (REPO / "docs" / "gallery.md").read_text())
    for target in ("explain-figures", "bench-chart"):
        commands = re.findall(r"epsanet (?:explain|bench) [^`]*", gallery)
        assert any(command.strip() in make_recipe(target) for command in commands), target
