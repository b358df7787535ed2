"""Pages without a kernel: Plotly figures as placeholders that one copy of plotly.js draws.

An HTML report must show its charts offline, yet plotly.js is 4.8 MB: inlined once per
figure (Plotly's ``notebook`` renderer, or a widget's saved state) it makes reports of
tens of megabytes. Here a figure is a small placeholder holding its JSON
(:func:`figure_html`), and a page gets plotly.js once, gzip-compressed, with a script
that unpacks it in the browser and draws every placeholder (:func:`plotly_script`).
"""

from __future__ import annotations

import base64
import gzip
import json
from html import escape
from typing import Any

#: The class of a placeholder <div>, which :func:`plotly_script` looks for.
PLACEHOLDER = "saibench-plotly"

# Unpack plotly.js (DecompressionStream: Chrome 80, Firefox 113, Safari 16.4), run it as a
# script, then draw each placeholder; a chart in a folded <details> is resized when it opens.
_DRAW = """
(async function () {
  const holders = document.querySelectorAll("div.%(cls)s");
  if (!holders.length) return;
  try {
    if (!window.Plotly) {
      const packed = document.getElementById("%(cls)s-js").textContent.trim();
      const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      const code = await new Response(stream).text();
      await new Promise((done, fail) => {
        const script = document.createElement("script");
        script.src = URL.createObjectURL(new Blob([code], {type: "text/javascript"}));
        script.onload = done;
        script.onerror = fail;
        document.head.appendChild(script);
      });
    }
    for (const holder of holders) {
      const figure = JSON.parse(holder.querySelector("script").textContent);
      const target = holder.querySelector(".%(cls)s-plot");
      holder.querySelector(".%(cls)s-note").remove();
      await window.Plotly.newPlot(target, figure.data || [], figure.layout || {},
                                  Object.assign({responsive: true}, figure.config || {}));
    }
    document.querySelectorAll("details").forEach((fold) => fold.addEventListener("toggle", () =>
      fold.querySelectorAll(".js-plotly-plot").forEach((plot) => window.Plotly.Plots.resize(plot))));
  } catch (error) {
    holders.forEach((holder) => {
      const note = holder.querySelector(".%(cls)s-note");
      if (note) note.textContent = "this browser could not draw the chart: " + error;
    });
  }
})();
"""


def _figure_dict(figure: Any) -> dict[str, Any]:
    if isinstance(figure, dict):
        return figure
    import plotly.io as pio

    return dict(json.loads(pio.to_json(figure, validate=False)))


def figure_html(figure: Any, height: int = 450) -> str:
    """A placeholder for ``figure`` that a page with :func:`plotly_script` draws as the live chart.

    Parameters
    ----------
    figure : plotly Figure, FigureWidget or dict
        The figure, or its JSON (``{"data": ..., "layout": ..., "config": ...}``, as
        Plotly's ``application/vnd.plotly.v1+json`` output holds it).
    height : int
        Pixels, unless the figure's layout says.

    Returns
    -------
    str
        A ``<div>`` holding the figure's JSON and a line that says what it is until drawn.
    """
    spec = _figure_dict(figure)
    height = int((spec.get("layout") or {}).get("height") or height)
    title = ((spec.get("layout") or {}).get("title") or {})
    text = title.get("text") if isinstance(title, dict) else title
    # "</" would end the <script> early: JSON allows "<\/" for it.
    data = json.dumps(spec, separators=(",", ":"), allow_nan=False, default=str).replace("</", "<\\/")
    return (f'<div class="{PLACEHOLDER}">'
            f'<p class="{PLACEHOLDER}-note"><i>a Plotly chart{": " + escape(str(text)) if text else ""} '
            "(drawn by the HTML report, or live in JupyterLab)</i></p>"
            f'<div class="{PLACEHOLDER}-plot" style="height: {height}px; width: 100%;"></div>'
            f'<script type="application/json">{data}</script></div>')


def plotly_script() -> str:
    """plotly.js once, gzip-compressed and base64-encoded, and the script that draws every placeholder.

    Returns
    -------
    str
        Two ``<script>`` elements, for the end of a page's ``<body>`` (about 2 MB, against
        4.8 MB for plotly.js as it comes).
    """
    from plotly.offline import get_plotlyjs

    packed = base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), 9, mtime=0)).decode("ascii")
    return (f'<script id="{PLACEHOLDER}-js" type="application/octet-stream">{packed}</script>\n'
            f"<script>{_DRAW % {'cls': PLACEHOLDER}}</script>\n")
