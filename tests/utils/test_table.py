"""Plain tables for the terminal: aligned columns, cut to the width."""
from epsanet._utils.table import plain_table, terminal_width


def test_a_plain_table_aligns_its_columns():
    table = plain_table(["name", "size", "note"], [["a", "1", "x"], ["bbb", "100", "yy"]], right=(1,), width=80)
    assert table.splitlines() == ["name  size  note", "----  ----  ----", "a        1  x", "bbb    100  yy"]


def test_the_last_column_is_cut_to_the_width():
    table = plain_table(["name", "note"], [["a", "n" * 100]], width=20)
    assert table.splitlines() == ["name  note", "----  --------------", "a     nnnnnnnnnnn..."]
    assert max(len(line) for line in table.splitlines()) == 20


def test_output_that_is_not_a_terminal_is_80_columns_wide(capsys):
    assert terminal_width() == 80  # pytest captures standard output: not a terminal
