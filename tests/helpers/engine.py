"""Shared test helpers."""

from __future__ import annotations


def readme_g(a, b):
    """micrograd's README expression of ``a`` and ``b`` (g = 24.7041 at a = -4, b = 2)."""
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g
