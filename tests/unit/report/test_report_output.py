"""report.html is self-contained; the PNGs are images with the outages shaded."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

from PIL import Image

from nazbench.report import cli, plots
from nazbench.report.data import load

from .conftest import T0

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(hand_run: Path) -> None:
    cli.build(hand_run)
    html = (hand_run / "report.html").read_text(encoding="utf-8")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    assert refs, "expected embedded images"
    assert all(r.startswith("data:image/png;base64,") for r in refs), refs
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    for ref in refs:
        raw = base64.b64decode(ref.split(",", 1)[1], validate=True)
        assert raw.startswith(PNG_MAGIC)
    assert len(refs) == len(plots.PLOTS)
    assert "hand-1" in html and "SMSC outage 1" in html


def test_html_escapes_error_strings(hand_run: Path) -> None:
    text = (hand_run / "errors.csv").read_text()
    (hand_run / "errors.csv").write_text(text.replace("ConnectionRefusedError(111)", "<b>x</b>"))
    cli.build(hand_run)
    html = (hand_run / "report.html").read_text()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def _pixel(fig, ax, x: float, y_frac: float, png: bytes) -> tuple[int, int, int]:
    """RGB of the saved PNG at data x and a fraction of the axes' height."""
    y = ax.get_ylim()[0] + y_frac * (ax.get_ylim()[1] - ax.get_ylim()[0])
    px, py = ax.transData.transform((x, y))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image.getpixel((round(px), image.height - round(py)))


def _blend(hex_color: str, alpha: float) -> tuple[int, ...]:
    rgb = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
    return tuple(round(255 * (1 - alpha) + c * alpha) for c in rgb)


def _close(a, b, tol: int = 6) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_throughput_png_shades_each_outage_in_its_service_colour(hand_run: Path) -> None:
    data = load(hand_run)
    fig = plots.plot_throughput(data)
    ax = fig.axes[0]
    bands = [p for p in ax.patches if (p.get_gid() or "").startswith("outage:")]
    assert [b.get_gid() for b in bands] == ["outage:SMSC outage 1", "outage:Redis outage 1"]
    labels = ax.get_legend_handles_labels()[1]
    assert "SMSC down" in labels and "Redis down" in labels
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=plots.DPI)
    png = buf.getvalue()
    assert png.startswith(PNG_MAGIC)
    minute = lambda t: (t - T0) / 60  # noqa: E731
    smsc = _pixel(fig, ax, minute(T0 + 115), 0.95, png)
    redis = _pixel(fig, ax, minute(T0 + 205), 0.95, png)
    clear = _pixel(fig, ax, minute(T0 + 170), 0.95, png)
    assert _close(smsc, _blend(plots.SERVICE_COLORS["SMSC"], plots.BAND_ALPHA)), smsc
    assert _close(redis, _blend(plots.SERVICE_COLORS["Redis"], plots.BAND_ALPHA)), redis
    assert _close(clear, (255, 255, 255)), clear


def test_all_pngs_are_valid_images(hand_run: Path) -> None:
    summary = cli.build(hand_run)
    assert set(summary["plots"]) == set(plots.PLOTS)
    for rel in summary["plots"].values():
        with Image.open(hand_run / rel) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.size[0] == plots.FIGSIZE[0] * plots.DPI
            assert image.size[1] >= plots.FIGSIZE[1] * plots.DPI


def test_errors_plot_has_bars_and_rss_plot_uses_metrics(hand_run: Path) -> None:
    (hand_run / "metrics").mkdir()
    (hand_run / "metrics" / "naz_rss_bytes.csv").write_text(
        f"timestamp,value\n{T0 + 10},35000000\n{T0 + 100},35200000\n{T0 + 230},35400000\n"
    )
    data = load(hand_run)
    ax = plots.plot_errors(data).axes[0]
    bars = [p for p in ax.patches if not (p.get_gid() or "").startswith("outage:")]
    assert sum(b.get_height() for b in bars) == 2
    ax = plots.plot_rss(data).axes[0]
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == [35.0, 35.2, 35.4]
    summary = cli.build(hand_run)
    assert summary["naz"]["rss_max_mb"] == 35.4
    assert summary["naz"]["rss_source"] == "metrics naz_rss_bytes"
    assert "RSS 35.0→35.4 MB" in summary["verdict"]
