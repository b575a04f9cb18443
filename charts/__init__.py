"""What is shown to people: Vega-Lite charts, recommendations, and insights and chat.

Charts: ``charts.spec.chart`` builds one chart of a dataset's matching rows (``GET
/datasets/ID/chart``); ``charts.recommend.recommend`` picks the charts worth looking at first
(``GET /datasets/ID/charts``); ``charts.data`` computes the bounded rows they draw, from the
statistics, the group-by engine, a bucketed scan or the row sample; ``charts.render`` draws a
spec as SVG or PNG when vl-convert-python is installed. ``charts.columns`` gives each column
its role.

Words: ``charts.profile`` lays out the compact profile an LLM reads (statistics, facts, a few
sample rows, never the rows); ``charts.findings`` says its facts without an LLM;
``charts.insights`` asks the LLM for findings and caches them; ``charts.chat`` answers
questions, running the queries the model proposes on the engine; ``charts.llm`` is the Groq
client on httpx, imported lazily.
"""

from charts.recommend import recommend
from charts.request import MARKS
from charts.spec import chart, validate

__all__ = ["MARKS", "chart", "recommend", "validate"]
