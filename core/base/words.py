"""Counts in words: "1 label", "10 labels", never "label(s)" on a page a stakeholder reads."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` with thousands separators and ``noun`` in the number it needs: ``plural``, or
    ``noun`` + "s" when not given."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def per_class(n: float) -> str:
    """A count of images per class as people read it: ``1,300``, ``96.3`` for a mean over classes
    of unequal size (``:g`` printed ``96.3333`` and ``1300``)."""
    return f"{n:,.1f}".removesuffix(".0")


def continued(sentence: str) -> str:
    """``sentence`` continued after a colon or a comma, its first letter lowered unless its first
    word is an acronym ("ECE", "JPEG"): "On the slices up to 2 per class: Only 2 distinct counts"
    read as two sentences glued together."""
    first = sentence.split(" ", 1)[0]
    if first.isupper() and len(first) > 1:
        return sentence
    return sentence[:1].lower() + sentence[1:]


def roughly(n: float) -> str:
    """A count far past the measurements, to two figures: ``15,000``, not ``15,230.2`` (the interval
    around it is wide or open)."""
    return f"{float(f'{n:.2g}'):,.0f}"
