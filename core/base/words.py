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
