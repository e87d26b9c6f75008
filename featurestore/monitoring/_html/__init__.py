"""Render a drift, skew or parity report (the dict of :meth:`Report.to_dict`) as one HTML page.

The page is self-contained so it can be mailed or archived and opened with no network: CSS is
inline, the charts are inline SVG drawn here, there is no script, and a Content-Security-Policy
forbids loading anything at all. Every string taken from the report is escaped. The
"all / needs attention / flagged" filter is plain CSS on radio buttons, so it needs no script.

Per feature, in the report's order (worst first): reference, owner, dtype, a verdict badge, the
reasons, the statistics and an SVG chart of the reference and current shares per bin overlaid
(``<svg class="fs-chart" data-ref="view:feature">``). A feature whose ``histogram`` is None gets
a short "no distribution" note instead of a chart.
"""

from featurestore.monitoring._html._page import render_report

__all__ = ["render_report"]
