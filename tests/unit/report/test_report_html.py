"""report.html and compare.html as HTML: phone-ready, accessible, a verdict word first.

Parsed with the stdlib (a small DOM below); the browser test renders them for real.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nazbench.report import cli, plots, render
from nazbench.report.data import load

from .conftest import DATA

FIXTURE = "run-20261130T042531Z"

VOID = {"meta", "img", "br", "hr", "input", "link", "source", "wbr", "col", "area", "base"}


@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = dataclasses.field(default_factory=list)
    parent: Node | None = None

    def text(self) -> str:
        out = []
        for c in self.children:
            out.append(c if isinstance(c, str) else c.text())
        return re.sub(r"\s+", " ", "".join(out)).strip()

    def iter(self, tag: str | None = None):
        for c in self.children:
            if isinstance(c, Node):
                if tag is None or c.tag == tag:
                    yield c
                yield from c.iter(tag)

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data):
        if self.cur.tag not in ("style", "script"):
            self.cur.children.append(data)


def parse(text: str) -> Node:
    b = _Builder()
    b.feed(text)
    b.close()
    return b.root


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    """The issue-14 smoke run, built once: (run dir, summary)."""
    dest = tmp_path_factory.mktemp("html") / FIXTURE
    shutil.copytree(DATA / FIXTURE, dest)
    return dest, cli.build(dest)


@pytest.fixture(scope="module")
def doc(built) -> Node:
    run_dir, _ = built
    return parse((run_dir / "report.html").read_text(encoding="utf-8"))


def body_text(root: Node) -> str:
    return next(root.iter("body")).text()


def check_page(root: Node) -> None:
    """What every page of the report must do (report.html and compare.html)."""
    metas = [m.attrs for m in root.iter("meta")]
    assert {"name": "viewport", "content": "width=device-width,initial-scale=1"} in metas
    tables = list(root.iter("table"))
    assert tables
    for t in tables:
        first = t.elements()[0]
        assert first.tag == "caption" and first.text(), "a table without a caption"
        assert t.parent is not None and "tw" in t.parent.classes(), "a table outside its box"
        for th in t.iter("th"):
            assert th.text(), "an empty <th>"
            assert th.attrs.get("scope") in ("col", "row"), th.text()
        for tr in (tr for body in t.iter("tbody") for tr in body.iter("tr")):
            assert tr.elements()[0].tag == "th" and tr.elements()[0].attrs["scope"] == "row"
    text = body_text(root)
    for raw in (r"\bTrue\b", r"\bFalse\b", r"\['", r"\{'", r'\{"'):
        assert not re.search(raw, text), f"raw Python/JSON in the text: {raw}"
    cells = [c.text() for tag in ("td", "th") for c in root.iter(tag)]
    assert not {"None", "null", "[]", "{}"} & set(cells), "a raw value in a table cell"
    headings = {h.text() for tag in ("h1", "h2", "h3") for h in root.iter(tag)}
    alts = [img.attrs.get("alt", "") for img in root.iter("img")]
    for alt in alts:
        assert alt and alt not in headings, alt
        # numbers, or why there is nothing to show
        assert re.search(r"\d|\bno\b", alt), f"alt text without a number: {alt}"
    assert len(set(alts)) == len(alts), "two charts with the same alt text"
    for img in root.iter("img"):  # each chart can be opened at full size
        fig = img.parent
        assert fig is not None and "fig" in fig.classes()
        siblings = fig.parent.elements()
        toggle = siblings[siblings.index(fig) - 1]
        assert toggle.tag == "details" and "zoom" in toggle.classes()


def verdicts(root: Node) -> list[Node]:
    return [s for s in root.iter("section") if "verdict" in s.classes()]


# --------------------------------------------------------------------------- report.html


def test_report_page_is_phone_ready_and_accessible(doc: Node) -> None:
    check_page(doc)


def test_css_scrolls_tables_and_breaks_long_tokens(built) -> None:
    run_dir, _ = built
    css = (run_dir / "report.html").read_text().split("<style>")[1].split("</style>")[0]
    assert re.search(r"\.tw\{[^}]*overflow-x:auto", css)
    assert "overflow-wrap:anywhere" in css
    assert re.search(r"\.fig img\{[^}]*max-width:100%", css)
    assert re.search(r"\.zoom\[open\]\+\.fig img\{max-width:none", css)


def test_verdict_word_first_with_its_reasons(doc: Node, built) -> None:
    _, summary = built
    o = render.outcome(summary)
    assert o["result"] == "FAIL"  # 3 of 2000 lost
    (block,) = verdicts(doc)
    body = next(doc.iter("body"))
    h2s = list(body.iter("h2"))
    assert h2s[0].text() == "FAIL" and "word" in h2s[0].classes()
    assert next(iter(block.iter("h2"))) is h2s[0]
    assert "fail" in block.classes()
    items = [li.text() for li in block.iter("li")]
    for r in o["reasons"] + o["warnings"]:
        assert r["text"] in items


def test_each_chart_in_its_own_section(doc: Node, built) -> None:
    _, summary = built
    assert {"latency", "unanswered", "error_events"} <= set(summary["plots"])
    body = next(doc.iter("body"))
    per_section: dict[str, int] = {}
    section = None
    for node in body.iter():
        if node.tag == "h2":
            section = node.text()
        elif node.tag == "img":
            per_section[section] = per_section.get(section, 0) + 1
    assert per_section, "no charts"
    assert all(n == 1 for n in per_section.values()), per_section
    assert len(per_section) == len(summary["plots"])


def test_alt_texts_say_what_the_chart_shows(doc: Node, built) -> None:
    _, summary = built
    alts = {img.attrs["alt"] for img in doc.iter("img")}
    throughput = summary["plot_text"]["throughput"]["alt"]
    assert throughput in alts
    assert "6.4 msg/s" in throughput and "20.8" in throughput  # ledger rate, resp/s burst
    assert "59.4 s" in summary["plot_text"]["latency"]["alt"]  # naz's worst reply latency


def test_throughput_caption_explains_resp_rate(doc: Node, built) -> None:
    captions = [c.text() for c in doc.iter("figcaption")]
    assert any("naz_submit_sm_resp_rate" in c and "late" in c for c in captions), captions


def test_tables_show_new_summary_keys(doc: Node, built) -> None:
    _, summary = built
    text = body_text(doc)
    for o in summary["outages"]:
        assert o["label"] in text
    for x in summary["lost"]:
        assert x["msg_id"] in text
        if x.get("evidence"):
            assert x["evidence"] in text
    captions = [c.text() for c in doc.iter("caption")]
    if "context" in summary:
        assert "What ran, for how long and why it ended" in captions
    if "health" in summary:
        assert any(h.text() == "Client health" for h in doc.iter("h2"))


def test_older_summary_without_new_keys_still_renders(built) -> None:
    run_dir, summary = built
    old = copy.deepcopy(summary)
    for key in ("outcome", "context", "recovery", "latency", "unanswered", "rates", "health"):
        old.pop(key, None)
    old.pop("plot_text", None)
    old["verdict"] = "naz delivered 1997/2000 once; 3 lost"
    for x in old["lost"]:
        for key in ("decided_by", "evidence", "silent"):
            x.pop(key, None)
    for o in old["outages"]:
        for key in ("clean", "errors_window", "first_error_s", "enquire_link_errors_s"):
            o.pop(key, None)
    root = parse(render.report_html(old, run_dir))
    (block,) = verdicts(root)
    assert next(iter(block.iter("h2"))).text() == "FAIL"
    assert "3 messages lost" in block.text()
    for img in root.iter("img"):
        assert img.attrs["alt"]


def test_fmt_booleans_and_lists() -> None:
    assert render.fmt(True) == "yes" and render.fmt(False) == "no"
    assert render.fmt(["150s", "210s"]) == "150s, 210s"
    assert render.fmt({"a": [1, 2]}) == "a: 1, 2"
    assert render.fmt(None) == "—" and render.fmt(0.5000) == "0.5"


def test_hand_run_without_metrics(hand_run: Path) -> None:
    summary = cli.build(hand_run)
    root = parse((hand_run / "report.html").read_text())
    check_page(root)
    assert verdicts(root)
    assert "sessions" not in summary["plots"]  # optional: no smsc_bound_sessions series


# --------------------------------------------------------------------------- compare.html


def test_compare_page(built, hand_run: Path) -> None:
    run_dir, _ = built
    out = hand_run.parent / "cmp"
    result = cli.compare(run_dir, hand_run, out)
    root = parse((out / "compare.html").read_text())
    check_page(root)
    blocks = verdicts(root)
    assert len(blocks) == 2
    for block, run in zip(blocks, result["runs"], strict=True):
        word = next(iter(block.iter("h2"))).text()
        assert word.endswith(run["outcome"]["result"]) and run["run_id"] in word
    assert json.loads((out / "compare.json").read_text())["runs"][0]["outcome"]["result"]


# --------------------------------------------------------------------------- plots


def _inside_figure(fig) -> None:
    fig.canvas.draw()
    box = fig.bbox
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is None:
            continue
        ext = legend.get_window_extent()
        assert ext.x0 >= box.x0 - 1 and ext.x1 <= box.x1 + 1, (ext, box)
        assert ext.y0 >= box.y0 - 1 and ext.y1 <= box.y1 + 1, (ext, box)


def test_legends_inside_every_figure(built) -> None:
    run_dir, _ = built
    data = load(run_dir)
    for name, builder in plots.BUILDERS.items():
        fig = builder(data)
        _inside_figure(fig)
        assert fig.legends or name == "sessions", name


def test_throughput_plots_matching_series_and_y_holds_everything(built) -> None:
    run_dir, _ = built
    ax = plots.plot_throughput(load(run_dir)).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    for needle in ("ledger", "smsc_submit_sm_rate", "naz_submit_sm_rate", "submit_sm_resp"):
        assert any(needle in label for label in labels), (needle, labels)
    top = ax.get_ylim()[1]
    for line in ax.get_lines():
        ys = [y for y in line.get_ydata() if y == y]  # NaN breaks the line
        assert max(ys) <= top, (line.get_label(), max(ys), top)
    assert top > 20  # naz's resp/s burst of 20.8 msg/s is on the chart


def test_error_events_timeline_rows_per_outage(built) -> None:
    run_dir, _ = built
    data = load(run_dir)
    ax = plots.plot_error_events(data).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [o.label for o in data.outages]
    assert ax.get_xlabel() == "seconds after the outage's stop"
    markers = {line.get_marker() for line in ax.get_lines()}
    assert len(markers) >= 3  # first accept + at least two event kinds


def test_sessions_plot_only_with_its_series(built, tmp_path: Path) -> None:
    run_dir, _ = built
    d = tmp_path / "s"
    shutil.copytree(run_dir, d)
    t0 = load(d).t0()
    (d / "metrics" / "smsc_bound_sessions.csv").write_text(
        f"timestamp,value\n{t0 + 10},1\n{t0 + 200},2\n{t0 + 215},1\n"
    )
    summary = cli.build(d)
    assert "sessions" in summary["plots"]
    assert "more than one" in summary["plot_text"]["sessions"]["alt"]
    root = parse((d / "report.html").read_text())
    assert any(h.text() == "Client health" for h in root.iter("h2"))
