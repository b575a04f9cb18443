"""Rillet's engine: the stages of a CSV's path from upload to response.

upload (spool the body) → convert (CSV to typed rows; coerce types each column, tally feeds
the values to stats and sketches, in a second process for a large file, index records where
each row starts) → store and jobs (the data directory and the sync queue) → read (pages and
streams; filter, scan, pages, aggregate) → encode (JSON, NDJSON, CSV). Beside them: settings,
errors, auth (keys, rate limit), limits (slots for long work), wsgi (CORS, access log).
"""
