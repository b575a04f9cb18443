"""Words about a dataset: insights (by the LLM, or from the statistics) and chat."""

from __future__ import annotations

from contextlib import ExitStack

from charts import chat as chats
from charts.insights import insights as find_insights
from streaming import params
from streaming.errors import LLMUnavailable
from streaming.read import open_dataset
from streaming.web.exchange import EVENT_HEADERS, Answer, Call, Streamed, json_answer
from streaming.web.openapi import VERSION, Doc, errors, json_content, ref
from streaming.web.state import Rillet

INSIGHTS = Doc(
    "Findings in plain words, by the LLM or from the statistics",
    {"200": json_content(ref("Insights"), "Insights"), **errors(400, 404, 409, 502, 504)},
    (VERSION,),
)
COLUMN_INSIGHTS = Doc(
    "Findings about one column",
    {"200": json_content(ref("Insights"), "Insights"), **errors(400, 404, 409, 502, 504)},
    (VERSION,),
)


def insights(rillet: Rillet, call: Call) -> Answer:
    """Insights about the dataset, or about one column when the path names one."""
    params.only(call.params, ("version",))
    version = params.version(call.params)
    with open_dataset(rillet.store, rillet.jobs, call.args["dataset_id"], version) as dataset:
        found = find_insights(
            dataset,
            rillet.llm.get(),
            rillet.insights_cache,
            call.args.get("column"),
            admit=rillet.llm_calls.take,
        )
    return json_answer(found)


CHAT = Doc(
    "Ask about the dataset; numbers come from queries the server runs",
    {
        "200": {
            "description": "The reply (JSON), or server-sent events when Accept is "
            "text/event-stream: delta events, then done (or error)",
            "content": {
                "application/json": {"schema": ref("ChatReply")},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        **errors(400, 404, 409, 413, 502, 503, 504),
    },
    (VERSION,),
    body={"required": True, "content": {"application/json": {"schema": ref("ChatRequest")}}},
)


def chat(rillet: Rillet, call: Call) -> Answer:
    params.only(call.params, ("version",))
    settings = rillet.settings
    version = params.version(call.params)
    with ExitStack() as held:  # closed here on any error; else the stream owns them
        dataset = held.enter_context(
            open_dataset(rillet.store, rillet.jobs, call.args["dataset_id"], version)
        )
        asked = chats.question(call.body(chats.BODY_MAX))
        client = rillet.llm.get()
        if client is None:
            raise LLMUnavailable("chat needs an LLM: set GROQ_API_KEY (insights work without one)")
        held.callback(rillet.llm_calls.take())
        if not call.wants_events():
            return json_answer(chats.answer(client, dataset, asked, settings))
        held.callback(rillet.streams.take())
        events = chats.stream(client, dataset, asked, settings)
        held.callback(events.close)
        return Answer(Streamed(iter(events), held.pop_all()), 200, dict(EVENT_HEADERS))
