"""Blocks -> chunks: sentence-aware packing within one block, with sentence overlap."""

from __future__ import annotations

import re

from ingest.records import Block, Chunk, chunk_id_for
from ingest.sentences import split_sentences

_WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _word_pieces(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """An over-long "sentence" (a table row, a URL list) cut at word boundaries."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    return [
        (words[k][0], words[min(k + limit, len(words)) - 1][1])
        for k in range(0, len(words), limit)
    ]


def chunk_blocks(
    doc_id: str,
    source: str,
    text: str,
    blocks: list[Block],
    chunk_words: int,
    overlap_sentences: int,
    page_of=None,
) -> list[Chunk]:
    """Pack each block's sentences into chunks of at most `chunk_words` words.

    A chunk never spans two blocks (so never two sections or two kinds) and never cuts a
    sentence, except a single sentence longer than the limit, which is cut at words. The
    last `overlap_sentences` sentences of a chunk start the next one, when they leave room.
    `page_of(offset)` gives the page at a character offset (defaults to the block's pages).
    """
    chunks: list[Chunk] = []
    for block in blocks:
        units: list[tuple[int, int]] = []
        for a, b in split_sentences(text, block.char_start, block.char_end):
            if count_words(text[a:b]) > chunk_words:
                units.extend(_word_pieces(text, a, b, chunk_words))
            else:
                units.append((a, b))
        sizes = [count_words(text[a:b]) for a, b in units]
        k = 0
        while k < len(units):
            total, m = 0, k
            while m < len(units) and (m == k or total + sizes[m] <= chunk_words):
                total += sizes[m]
                m += 1
            a, b = units[k][0], units[m - 1][1]
            chunks.append(_make_chunk(doc_id, source, text, block, a, b, page_of))
            if m >= len(units):
                break
            # Overlap: restart a few sentences back, but always move forward.
            back = min(overlap_sentences, m - k - 1)
            while back > 0 and sum(sizes[m - back : m]) + sizes[m] > chunk_words:
                back -= 1
            k = m - back
    return chunks


def _make_chunk(doc_id, source, text, block: Block, a: int, b: int, page_of) -> Chunk:
    if page_of is not None:
        page_start, page_end = page_of(a), page_of(b - 1)
    else:
        page_start, page_end = block.page_start, block.page_end
    body = text[a:b]
    return Chunk(
        chunk_id=chunk_id_for(doc_id, a, b, body),
        doc_id=doc_id,
        source=source,
        text=body,
        section=" > ".join(block.section),
        page_start=page_start,
        page_end=page_end,
        char_start=a,
        char_end=b,
        kind=block.kind,
        title=block.title,
    )

