"""Rillet's engine: the stages of a CSV's path from upload to response. It knows no HTTP.

upload (spool the body) → convert (CSV to typed rows; coerce types each column, tally feeds the
values to stats, sketches and the column files, in a second process for a large file, index
records where each row starts) → store and jobs (the data directory and the sync queue;
metadata builds the dataset's record) → read (an open dataset; filter, scan, pages, aggregate
answer the query layer's queries, ``query``) → encode (JSON, NDJSON, CSV). Beside them: params
(the request's words), settings, errors, memory.

``streaming.web`` is the HTTP edge around it; nothing here imports it (tests/test_web.py).
"""
