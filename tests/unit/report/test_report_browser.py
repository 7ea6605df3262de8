"""report.html in a real browser (headless Chromium) at phone and desktop widths.

Skipped only when no Chromium is installed. The shipped page has no script: the overflow
measurement runs on a temporary copy with an inline script that writes what it measured
into the DOM, read back with ``--dump-dom``. Screenshots go to a temporary directory, or
to docs/img/report-390.png and report-1400.png with NAZBENCH_SCREENSHOTS=1.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from nazbench.report import cli, render

from .conftest import DATA
from .test_report_html import FIXTURE, body_text, parse

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MAX_PNG_BYTES = 400_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium) for the browser test"
)

PROBE = """<script>
(function () {
  function measure(when) {
    var d = document.documentElement, w = d.clientWidth, bad = [];
    document.querySelectorAll('body *').forEach(function (el) {
      var r = el.getBoundingClientRect();
      var scroller = el.parentElement && el.parentElement.closest('.tw, .fig');
      if (r.right > w + 1 && !scroller) {
        bad.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(r.right));
      }
    });
    parent.postMessage({when: when, scrollWidth: d.scrollWidth, clientWidth: w,
      innerWidth: window.innerWidth, scrollHeight: d.scrollHeight, offenders: bad.slice(0, 8)},
      '*');
  }
  measure('sync');
  window.addEventListener('load', function () { measure('load'); });
})();
</script>"""


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",  # root in containers and CI
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={user_data}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("browser") / FIXTURE
    shutil.copytree(DATA / FIXTURE, dest)
    return dest, cli.build(dest)


# Headless windows are at least 500 px wide, so the page is measured in an iframe of the
# width under test; the probe in it posts its numbers to this host page, which writes them
# into its own DOM for --dump-dom.
HOST = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{src}" style="border:0;width:{width}px;height:1200px"></iframe>
<script>
window.addEventListener('message', function (e) {{
  var out = document.createElement('pre');
  out.id = 'probe-' + e.data.when;
  out.textContent = JSON.stringify(e.data);
  document.body.appendChild(out);
}});
</script></body></html>"""


def measure(page: Path, width: int, tmp: Path) -> tuple[dict, str]:
    """Load a probed copy of ``page`` at ``width``: (measurements after load, its DOM)."""
    probe = tmp / f"probe-{width}.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    host = tmp / f"host-{width}.html"
    host.write_text(HOST.format(src=probe.name, width=width))
    dom = chromium(
        "--window-size=1600,1200",
        "--virtual-time-budget=5000",
        "--dump-dom",
        host.as_uri(),
        user_data=tmp / f"ud-{width}",
    ).stdout
    found = {}
    for when in ("sync", "load"):
        m = re.search(rf'<pre id="probe-{when}">(.*?)</pre>', dom, flags=re.S)
        if m:
            found[when] = json.loads(html.unescape(m.group(1)))
    assert found, "the probe script did not run"
    # the page's own DOM as Chromium built it (the iframe's document is not dumped)
    page_dom = chromium(
        f"--window-size={max(width, 500)},1200",
        "--virtual-time-budget=2000",
        "--dump-dom",
        page.as_uri(),
        user_data=tmp / f"ud-dom-{width}",
    ).stdout
    return found.get("load") or found["sync"], page_dom


def screenshot(page: Path, width: int, height: int, out: Path, tmp: Path) -> None:
    chromium(
        f"--window-size={width},{height}",
        f"--screenshot={out}",
        page.as_uri(),
        user_data=tmp / f"ud-shot-{width}",
    )
    for colors in (64, 32, 16):  # a palette PNG keeps it small enough for docs/
        if out.stat().st_size <= MAX_PNG_BYTES:
            break
        with Image.open(out) as image:
            rgb = image.convert("RGB")
        rgb.quantize(colors=colors).save(out, optimize=True)


@pytest.mark.parametrize("width", [390, 1400])
def test_report_in_chromium(report, width: int, tmp_path: Path) -> None:
    run_dir, summary = report
    page = run_dir / "report.html"
    m, dom = measure(page, width, tmp_path)
    assert m["innerWidth"] == width
    assert m["scrollWidth"] <= m["clientWidth"], f"horizontal overflow at {width} px: {m}"
    assert not m["offenders"], m["offenders"]
    text = body_text(parse(dom))
    outcome = render.outcome(summary)
    assert outcome["result"] in text
    for reason in outcome["reasons"] + outcome["warnings"]:
        assert reason["text"] in text
    for o in summary["outages"]:
        assert o["label"] in text
    for x in summary["lost"]:
        assert x["msg_id"] in text

    # the whole page for docs/img; the first screens only otherwise (faster, same checks)
    if os.environ.get("NAZBENCH_SCREENSHOTS") == "1":
        out, height = ROOT / "docs" / "img" / f"report-{width}.png", m["scrollHeight"]
    else:
        out, height = tmp_path / f"report-{width}.png", min(m["scrollHeight"], 2400)
    out.parent.mkdir(parents=True, exist_ok=True)
    screenshot(page, width, height, out, tmp_path)
    with Image.open(out) as image:
        assert image.size == (width, height)
    assert out.stat().st_size <= MAX_PNG_BYTES


def test_compare_in_chromium(report, hand_run: Path, tmp_path: Path) -> None:
    run_dir, _ = report
    result = cli.compare(run_dir, hand_run, tmp_path / "cmp")
    m, dom = measure(tmp_path / "cmp" / "compare.html", 390, tmp_path)
    assert m["scrollWidth"] <= m["clientWidth"], f"horizontal overflow at 390 px: {m}"
    text = body_text(parse(dom))
    for run in result["runs"]:
        assert run["run_id"] in text and run["outcome"]["result"] in text
