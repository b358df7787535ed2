"""Colours of a work–precision chart: one hue per family, shades of it for the family's variants.

Plain data (CSS hex strings), so the chart's traces carry their colour before any
plotting library is involved and tests can check it.
"""

from __future__ import annotations

import colorsys

#: Plotly's default qualitative palette: the hue of the n-th family (cycled past ten).
HUES = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff",
        "#fecb52")
#: The lightness range the variants of one family spread over: dark enough to see on white, light enough
#: to tell apart from the darkest.
_DARKEST, _LIGHTEST = 0.25, 0.75


def _rgb(color: str) -> tuple[float, float, float]:
    return (int(color[1:3], 16) / 255, int(color[3:5], 16) / 255, int(color[5:7], 16) / 255)


def _hex(r: float, g: float, b: float) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in (r, g, b))


def hue_of(color: str) -> float:
    """The hue (0–1) of a ``#rrggbb`` colour: what the shades of one family share."""
    return colorsys.rgb_to_hls(*_rgb(color))[0]


def shades(family: int, n: int) -> list[str]:
    """``n`` distinct colours of family number ``family``'s hue, darkest first.

    Parameters
    ----------
    family : int
        The family's position among the chart's families (its hue is ``HUES[family % 10]``).
    n : int
        How many variants (curves) the family has; one gets the hue itself.

    Returns
    -------
    list of str
        ``#rrggbb`` colours of the same hue and saturation, evenly spread in lightness.
    """
    base = HUES[family % len(HUES)]
    if n <= 1:
        return [base][:max(n, 0)]
    h, _, s = colorsys.rgb_to_hls(*_rgb(base))
    step = (_LIGHTEST - _DARKEST) / (n - 1)
    return [_hex(*colorsys.hls_to_rgb(h, _DARKEST + k * step, s)) for k in range(n)]
