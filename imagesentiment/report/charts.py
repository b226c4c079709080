"""The report's charts as inline SVG (no TensorFlow, no JavaScript library): the confidence histogram and the
valence-arousal map of the photos, each dot linked to its card in the gallery."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..contract import RATING_SCALE

COLOURS = {"negative": "#c0392b", "neutral": "#7f8c8d", "positive": "#27ae60"}
FONT = 13  # the charts' tick and axis labels, in px: readable beside the page's text


def _box(width: float, height: float) -> str:
    """An SVG's size attributes: drawn at ``width`` x ``height`` px, and scaled down with its text where the page is
    narrower (a phone), by the report's style."""
    return f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}"'

def _axes(left: int, top: int, width: int, height: int, x_label: str, y_label: str) -> str:
    """Two axis lines and their labels around the plot area."""
    bottom, middle = top + height, top + height / 2
    return (f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#333"/>'
            f'<line x1="{left}" x2="{left + width}" y1="{bottom}" y2="{bottom}" stroke="#333"/>'
            f'<text x="{left + width / 2}" y="{bottom + 2.9 * FONT}" font-size="{FONT}" '
            f'text-anchor="middle">{x_label}</text>'
            f'<text x="{FONT}" y="{middle}" font-size="{FONT}" text-anchor="middle" '
            f'transform="rotate(-90 {FONT} {middle})">{y_label}</text>')


def histogram(confidence: pd.Series, bins: int = 10) -> str:
    """An SVG histogram of the confidences with both axes: images per bin against confidence."""
    counts, edges = np.histogram(confidence.dropna(), bins=bins, range=(0, 1))
    top, left, height, step = max(int(counts.max()), 1), 56, 180, 44
    bars = "".join(
        f'<rect x="{left + i * step}" y="{10 + height - height * c / top:.1f}" width="{step - 4}" '
        f'height="{height * c / top:.1f}" fill="#3b7dd8"><title>{edges[i]:.1f}–{edges[i + 1]:.1f}: {c}</title></rect>'
        for i, c in enumerate(counts))
    x_ticks = "".join(f'<text x="{left + i * step - 2}" y="{height + 10 + 1.4 * FONT}" font-size="{FONT}" '
                      f'text-anchor="middle">{e:.1f}</text>' for i, e in enumerate(edges))
    y_ticks = "".join(f'<line x1="{left - 4}" x2="{left}" y1="{y:.1f}" y2="{y:.1f}" stroke="#333"/>'
                      f'<text x="{left - 7}" y="{y + FONT / 3:.1f}" font-size="{FONT}" text-anchor="end">{v}</text>'
                      for v, y in ((v, 10 + height - height * v / top) for v in sorted({0, top // 2, top})))
    axes = _axes(left, 10, bins * step, height, "confidence", "images")
    return (f'<svg id="histogram" {_box(left + bins * step + 16, height + 10 + 3.4 * FONT)}>'
            f'{bars}{axes}{x_ticks}{y_ticks}</svg>')


def valence_arousal(frame: pd.DataFrame, cards: pd.Series) -> str:
    """An SVG map of the photos by predicted valence (across) and arousal (up), on the 1-7 scale, each dot in its
    predicted class's colour; ``cards`` gives each row's card number in the gallery (NaN: not in it), which a
    dot names so that the page shows that card's thumbnail on hover and opens it on a click."""
    low, high = RATING_SCALE
    left, top, size = 56, 10, 300

    def place(value: float, flip: bool) -> float:
        share = (min(max(value, low), high) - low) / (high - low)
        return top + size * (1 - share) if flip else left + size * share

    grid = "".join(f'<line x1="{place(v, False):.1f}" x2="{place(v, False):.1f}" y1="{top}" y2="{top + size}" '
                   f'stroke="#ddd"/><line x1="{left}" x2="{left + size}" y1="{place(v, True):.1f}" '
                   f'y2="{place(v, True):.1f}" stroke="#ddd"/>'
                   f'<text x="{place(v, False):.1f}" y="{top + size + 1.4 * FONT}" font-size="{FONT}" '
                   f'text-anchor="middle">{v:g}</text><text x="{left - 7}" y="{place(v, True) + FONT / 3:.1f}" '
                   f'font-size="{FONT}" text-anchor="end">{v:g}</text>' for v in np.arange(low, high + 1))
    dots = []
    for row, card in zip(frame.itertuples(), cards):
        link = "" if pd.isna(card) else f' data-card="{int(card)}"'
        dots.append(f'<circle cx="{place(row.valence, False):.1f}" cy="{place(row.arousal, True):.1f}" r="4.5" '
                    f'fill="{COLOURS.get(row.label, "#3b7dd8")}" fill-opacity="0.75"{link}><title>'
                    f'{html.escape(str(row.path))}: valence {row.valence:.1f}, arousal {row.arousal:.1f}</title>'
                    '</circle>')
    axes = _axes(left, top, size, size, "valence: unpleasant → pleasant", "arousal: calm → intense")
    return (f'<svg id="ratings-map" {_box(left + size + 16, top + size + 3.4 * FONT)}>'
            f'{grid}{axes}{"".join(dots)}</svg>')
