"""Charts: Vega-Lite v6 specifications whose data the server aggregates, and recommendations.

``charts.spec.chart`` builds one chart of a dataset's matching rows (``GET
/datasets/ID/chart``); ``charts.recommend.recommend`` picks the charts worth looking at first
(``GET /datasets/ID/charts``); ``charts.data`` computes the bounded rows they draw, from the
statistics, the group-by engine, a bucketed scan or the row sample; ``charts.render`` draws a
spec as SVG or PNG when vl-convert-python is installed.
"""

from charts.recommend import recommend
from charts.request import MARKS
from charts.spec import chart, validate

__all__ = ["MARKS", "chart", "recommend", "validate"]
