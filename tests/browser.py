"""Headless chromium for the report tests: find it (skip locally, fail on CI when absent), load a
page with a probe script injected, read the probe's results back from the dumped DOM."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

#: writes, into body[data-probe], what the layout tests check: the page's and the window's
#: width, every element that reaches past the window's edges (also after switching the plate
#: map through its colour layers and clicking a row to sequence), script errors, whether the
#: report's script finished, and the text of every SVG <text> (gene names in the charts)
PROBE = """<script>
(function () {
  const iw = window.innerWidth, wide = new Set(), errors = [];
  window.addEventListener('error', (e) => errors.push(e.message));
  function check() {
    for (const e of document.querySelectorAll('body *')) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && (r.right > iw + 0.5 || r.left < -0.5)) {
        wide.add(e.tagName + (e.id ? '#' + e.id : '') + ' ' + Math.round(r.left) + '..' +
                 Math.round(r.right));
      }
    }
  }
  check();
  const texts = Array.from(document.querySelectorAll('svg text')).map((t) => t.textContent);
  const found = {
    wells: document.querySelectorAll('#plate-view g.well').length,
    heat_dots: document.querySelectorAll('#heat-view circle.well').length,
    forest_rows: document.querySelectorAll('#forest-view line').length,
    drill: (document.getElementById('drill-info') || {}).textContent || '',
    more_rows: document.querySelectorAll('#more-table tbody tr').length,
    risk_lines: document.querySelectorAll('#risk-view polyline').length,
  };
  // every colour layer of the plate map, and a click on the first row to sequence: still fits
  const layer = document.getElementById('layer'), layers = [];
  for (const o of layer ? Array.from(layer.options) : []) {
    layer.value = o.value;
    layer.dispatchEvent(new Event('change'));
    layers.push(o.value);
    check();
  }
  const row = document.querySelector('#next-table tbody tr');
  if (row) { row.click(); check(); }
  document.body.setAttribute('data-probe', JSON.stringify(Object.assign(found, {
    scroll_width: document.documentElement.scrollWidth, inner_width: iw, wide: Array.from(wide),
    height: document.documentElement.scrollHeight, errors: errors, layers: layers,
    ready: document.body.getAttribute('data-ready') === '1', svg_text: texts,
    marked: document.querySelectorAll('#plate-view circle[stroke="#e7298a"]').length,
  })));
})();
</script>"""

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--virtual-time-budget=5000")  # fmt: skip


def chromium() -> str:
    """The chromium executable; skips the test locally, fails it on CI, when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run must install it (apt-get install chromium)")
    pytest.skip("chromium not installed (CI installs it)")


def browse(exe: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *FLAGS, *args], capture_output=True, text=True, timeout=120,
                          check=True)  # fmt: skip


def probe(exe: str, page: Path, width: int, tmp: Path) -> dict:
    """Load ``page`` in a ``width`` px wide window with :data:`PROBE` injected; its results."""
    probed = tmp / f"{page.stem}.{width}.probe.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")  # fmt: skip
    dom = browse(exe, f"--window-size={width},900", "--dump-dom", probed.as_uri()).stdout
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, f"the probe did not run: {dom[:300]}"
    return json.loads(html.unescape(found.group(1)))


def assert_fits(result: dict, width: int, name: str) -> None:
    """No horizontal scrolling at ``width``: the page and every element within the window."""
    assert result["inner_width"] == width, result["inner_width"]
    assert result["scroll_width"] <= width, f"{name} scrolls sideways at {width} px"
    assert not result["wide"], f"{name} at {width} px: elements past the edge {result['wide'][:8]}"


def screenshot(exe: str, page: Path, width: int, height: int, out: Path) -> Path:
    browse(exe, f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri())
    return out
