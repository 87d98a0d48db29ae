"""Tables for a terminal: plain text that fits its width (80 columns when output is not a terminal)."""
import shutil
import sys
from typing import Optional, Sequence

__all__ = ["terminal_width", "plain_table"]

_CUT = "..."


def terminal_width() -> int:
    """The width of the terminal standard output goes to; 80 when it is not a terminal (a pipe, a file)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else 80


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = (),
                width: Optional[int] = None) -> str:
    """``rows`` under ``headers`` as plain text: columns two spaces apart, padded to their widest
    cell (the columns in ``right`` right-aligned), a rule under the headers. Cells of the last
    column that would pass ``width`` (default: :func:`terminal_width`) are cut, ending in "..."."""
    width = terminal_width() if width is None else width
    columns = list(zip(headers, *rows))
    widths = [max(len(cell) for cell in column) for column in columns]
    room = width - sum(widths[:-1]) - 2 * (len(widths) - 1)
    if widths[-1] > room:
        widths[-1] = max(room, len(headers[-1]))

    def line(cells: Sequence[str]) -> str:
        *first, last = cells
        if len(last) > widths[-1]:
            last = last[:widths[-1] - len(_CUT)] + _CUT
        padded = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(first, widths))]
        return "  ".join([*padded, last.rjust(widths[-1]) if len(cells) - 1 in right else last]).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])
