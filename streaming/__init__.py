"""Rillet's engine: the stages of a CSV's path from upload to response.

upload (spool the body) → convert (CSV to typed rows; coerce types each column, stats and
sketches watch the values go by, index records where each row starts) → store and jobs (the
data directory and the sync queue) → read (pages and streams) → encode (JSON, NDJSON, CSV).
"""
