"""VictoriaMetrics' pairs rewritten into OpenTSDB's dps by a few bytes operations over a whole response.

The pairs of every series (``ts,"v"],[ts,"v`` as matrix_texts gives them, seconds) and the JSON
around them (each result's head, its dps' brackets, its tail) are joined into one text and rewritten
by one or two replacements and one translation, all in C, without a Python step per series or per
point. The JSON around the pairs is disguised first: its quotes and commas (which the rewriting
changes) and the letters of NaN and Inf (which it looks for) are swapped for control characters,
which never occur raw in a JSON text, and the translation swaps them back.
"""

from __future__ import annotations

_PLAIN, _HIDDEN = b'",Nn', b"\x03\x02\x04\x05"
_DISGUISE = bytes.maketrans(_PLAIN, _HIDDEN)
_RESTORE = bytes.maketrans(_HIDDEN, _PLAIN)
# ts,"v"],[ts,"v -> ts":v,"ts":v with no insertion: "],[ -> \x02\x03\x01\x01, then , -> " and " -> :,
# the disguised JSON restored (\x02 -> , and \x03 -> "), and \x01 dropped.
_OBJECT_PAIRS = bytes.maketrans(b',"' + _HIDDEN, b'":' + _PLAIN)


def disguise(text: bytes) -> bytes:
    """JSON around the pairs, as it goes into the text to rewrite."""
    return text.translate(_DISGUISE)


def dps_brackets(arrays: bool) -> tuple[bytes, bytes]:
    """What opens and closes a result's dps around its pairs."""
    return (b"[[", b"]]") if arrays else (b'{"', b"}")


def points(text: bytes, series: int) -> int:
    """The points of a text to rewrite holding this many series: a pair holds one comma and pairs are
    separated by one (the disguised JSON holds none)."""
    return (text.count(b",") + series) // 2


def rewrite(text: bytes, ms_resolution: bool, arrays: bool) -> bytes | None:
    """The response's JSON from the text of disguised JSON and pairs; None when a value is NaN or infinite."""
    if b"N" in text or b"n" in text:  # NaN, Inf (one-byte searches: the fastest)
        return None
    if arrays:
        if ms_resolution:
            text = text.replace(b',"', b'000,"')
        return text.translate(_RESTORE, b'"')
    if ms_resolution:
        return text.replace(b',"', b'000":').replace(b'"],[', b',"').translate(_RESTORE)
    return text.replace(b'"],[', b"\x02\x03\x01\x01").translate(_OBJECT_PAIRS, b"\x01")
