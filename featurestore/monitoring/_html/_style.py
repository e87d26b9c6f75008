"""The report page's look: its Content-Security-Policy (nothing may be loaded) and its inline
CSS, including the "all / needs attention / flagged" filter built on radio buttons. Long words
and values wrap anywhere, so no table or card is ever wider than the page."""

from __future__ import annotations

__all__ = ["CSP", "CSS"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --card: #fff;
  --flagged: #b3261e; --flagged-bg: #fdecea; --warn: #8a5300; --warn-bg: #fff3d6;
  --insufficient_data: #4a5568; --insufficient_data-bg: #e9edf2; --ok: #1e6b34;
  --ok-bg: #e3f3e7; --ref: #8fb3d9; --cur: #e8710a; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.1rem; margin: 0; overflow-wrap: anywhere; }
h2 code { font-size: 1.05rem; }
h3 { font-size: .8rem; margin: 14px 0 6px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.fs-sub { color: var(--muted); margin: 0 0 18px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.fs-tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 18px; padding: 0;
  list-style: none; }
.fs-tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 14px; min-width: 110px; }
.fs-tile b { display: block; font-size: 1.5rem; line-height: 1.2; }
.fs-tile span { color: var(--muted); font-size: .85rem; }
.fs-tile-items { display: flex; flex-wrap: wrap; gap: 2px 8px; max-width: 420px;
  margin-top: 2px; }
.fs-facts { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: -6px 0 18px; }
.fs-facts div { display: flex; gap: 8px; min-width: 0; }
.fs-facts dt { color: var(--muted); }
.fs-facts dd { margin: 0; font-weight: 600; }
.fs-tile.fs-v-flagged { border-color: var(--flagged); background: var(--flagged-bg); }
.fs-tile.fs-v-warn { border-color: var(--warn); background: var(--warn-bg); }
.fs-tile.fs-v-insufficient_data { background: var(--insufficient_data-bg); }
.fs-tile.fs-v-ok { border-color: var(--ok); background: var(--ok-bg); }
.fs-tile.fs-v-flagged b { color: var(--flagged); }
.fs-tile.fs-v-warn b { color: var(--warn); }
.fs-tile.fs-v-ok b { color: var(--ok); }
details.fs-settings, .fs-card, .fs-overview { background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; margin: 0 0 16px; }
details.fs-settings { padding: 10px 16px; }
details.fs-settings summary { cursor: pointer; font-weight: 600; }
.fs-overview { padding: 6px 16px 10px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 10px 4px 0; vertical-align: top;
  border-bottom: 1px solid #eef1f4; }
th { font-weight: 600; }
td.fs-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.fs-examples { width: 100%; }
.fs-examples td { min-width: 6em; }
.fs-examples th, .fs-stats th { overflow-wrap: break-word; }
.fs-examples td { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.fs-table-wide { width: 100%; }
.fs-index { table-layout: fixed; }
.fs-c-verdict { width: 11em; }
.fs-c-ref { width: 27%; }
.fs-c-owner { width: 11%; }
.fs-date { white-space: nowrap; }
.fs-scroll { overflow-x: auto; }
.fs-badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; border: 1px solid currentColor; }
.fs-badge.fs-v-flagged { color: var(--flagged); background: var(--flagged-bg); }
.fs-badge.fs-v-warn { color: var(--warn); background: var(--warn-bg); }
.fs-badge.fs-v-insufficient_data { color: var(--insufficient_data);
  background: var(--insufficient_data-bg); }
.fs-badge.fs-v-ok { color: var(--ok); background: var(--ok-bg); }
.fs-card { padding: 14px 18px 16px; border-left-width: 5px; }
.fs-card.fs-v-flagged { border-left-color: var(--flagged); }
.fs-card.fs-v-warn { border-left-color: var(--warn); }
.fs-card.fs-v-ok { border-left-color: var(--ok); }
.fs-card-head { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.fs-meta { margin: 4px 0 0; color: var(--muted); display: flex; flex-wrap: wrap;
  gap: 4px 18px; }
.fs-meta b { color: var(--fg); font-weight: 600; }
.fs-reasons { margin: 10px 0 0; padding-left: 20px; }
.fs-body { display: grid; grid-template-columns: minmax(0, 2fr) minmax(220px, 1fr);
  gap: 8px 28px; }
@media (max-width: 820px) { .fs-body { grid-template-columns: minmax(0, 1fr); } }
.fs-chart { width: 100%; height: auto; display: block; }
.fs-chart text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  fill: #444c56; }
.fs-chart .fs-axis-title { fill: var(--muted); }
.fs-chart .fs-grid { stroke: #e6e9ed; }
.fs-chart .fs-axis { stroke: #8c959f; }
.fs-chart .fs-bar-ref { fill: var(--ref); }
.fs-chart .fs-bar-cur { fill: var(--cur); fill-opacity: .85; }
.fs-chart .fs-bin:hover rect { stroke: var(--fg); stroke-width: .6; }
.fs-series .fs-line { fill: none; stroke: var(--cur); stroke-width: 2; }
.fs-series .fs-threshold { fill: none; stroke: var(--flagged); stroke-width: 1.2;
  stroke-dasharray: 5 4; }
.fs-series .fs-dot-flagged { fill: var(--flagged); }
.fs-nochart { color: var(--muted); font-style: italic; border: 1px dashed var(--line);
  border-radius: 6px; padding: 16px; margin: 10px 0 0; }
.fs-shares summary { cursor: pointer; color: var(--muted); font-size: 12.5px; }
.fs-empty { color: var(--muted); }
.fs-filter { display: flex; gap: 6px; align-items: center; margin: 0 0 14px; flex-wrap: wrap; }
.fs-filter label { border: 1px solid var(--line); background: var(--card); border-radius: 999px;
  padding: 3px 12px; cursor: pointer; }
.fs-radio { position: absolute; opacity: 0; width: 1px; height: 1px; }
#fs-show-all:checked ~ main label[for="fs-show-all"],
#fs-show-attention:checked ~ main label[for="fs-show-attention"],
#fs-show-flagged:checked ~ main label[for="fs-show-flagged"] { background: var(--fg);
  color: #fff; border-color: var(--fg); }
#fs-show-all:focus-visible ~ main label[for="fs-show-all"],
#fs-show-attention:focus-visible ~ main label[for="fs-show-attention"],
#fs-show-flagged:focus-visible ~ main label[for="fs-show-flagged"] {
  outline: 2px solid var(--cur); outline-offset: 2px; }
#fs-show-attention:checked ~ main [data-verdict="ok"],
#fs-show-flagged:checked ~ main [data-verdict]:not([data-verdict="flagged"]) { display: none; }
"""
