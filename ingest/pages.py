"""Printed page numbers in extracted text: which standalone numbers are page markers."""

from __future__ import annotations

import re

_NUMBER_LINE = re.compile(r"^\s*(\d{1,4})\s*$")

# Plausible lines of extracted text per printed page (000 has about 45).
_MIN_LINES_PER_PAGE = 5
_MAX_LINES_PER_PAGE = 120
_MAX_PAGE_GAP = 30


def find_page_markers(lines: list[str], skip: set[int]) -> dict[int, int]:
    """Line index -> printed page number, for the standalone numbers that are page numbers.

    Footnote numbers are standalone numbers too ("1" / "2" above the notes of a page), so the
    markers are the longest chain of standalone numbers that increase, with a plausible number
    of lines per page between consecutive ones (dynamic programming over the candidates).
    Fewer than 3 markers means the document has no printed page numbers.
    """
    candidates = [
        (i, int(m.group(1)))
        for i, line in enumerate(lines)
        if i not in skip and (m := _NUMBER_LINE.match(line)) and int(m.group(1)) > 0
    ]
    if len(candidates) < 3:
        return {}
    best = [1] * len(candidates)
    prev = [-1] * len(candidates)
    for j, (line_j, page_j) in enumerate(candidates):
        for k in range(j):
            line_k, page_k = candidates[k]
            gap = page_j - page_k
            if not 1 <= gap <= _MAX_PAGE_GAP:
                continue
            span = line_j - line_k
            if not _MIN_LINES_PER_PAGE * gap <= span <= _MAX_LINES_PER_PAGE * gap:
                continue
            if best[k] + 1 > best[j]:
                best[j], prev[j] = best[k] + 1, k
    end = max(range(len(candidates)), key=lambda j: (best[j], -j))
    if best[end] < 3:
        return {}
    chain: dict[int, int] = {}
    while end != -1:
        chain[candidates[end][0]] = candidates[end][1]
        end = prev[end]
    return chain


def assign_pages(
    n_lines: int, markers: dict[int, int], anchors: dict[int, int]
) -> list[int | None]:
    """Printed page of every line.

    A page number is printed at the foot of its page, so the text before marker N is on page N
    and the text after it on N + 1. `anchors` are TOC-matched headings (line -> the page the TOC
    gives it). Between two known points several pages apart (markers lost in extraction), the
    page is interpolated by line position: an estimate, bounded by the known pages.
    """
    # Known points: (line, page of that line, page after it).
    points: list[tuple[int, int, int]] = []
    for line, page in markers.items():
        points.append((line, page, page + 1))
    for line, page in anchors.items():
        if line not in markers:
            points.append((line, page, page))
    points.sort()
    # Keep the points consistent (non-decreasing pages); a TOC page can disagree with markers.
    consistent: list[tuple[int, int, int]] = []
    for point in points:
        if consistent and point[1] < consistent[-1][2]:
            continue
        consistent.append(point)
    pages: list[int | None] = [None] * n_lines
    if not consistent:
        return pages
    k = 0
    for i in range(n_lines):
        while k < len(consistent) and consistent[k][0] < i:
            k += 1
        if k < len(consistent) and consistent[k][0] == i:
            pages[i] = consistent[k][1]
            continue
        after = consistent[k] if k < len(consistent) else None
        before = consistent[k - 1] if k > 0 else None
        if before is None:
            assert after is not None
            pages[i] = after[1]
        elif after is None:
            pages[i] = before[2]
        else:
            low, high = before[2], after[1]
            if high <= low:
                pages[i] = low if high < low else high
            else:
                frac = (i - before[0]) / (after[0] - before[0])
                pages[i] = min(high, low + int(frac * (high - low + 1)))
    return pages
