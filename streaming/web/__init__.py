"""The HTTP edge: the Bottle app, its route table and handlers, keys, limits, gzip, CORS.

Nothing in the engine (``streaming``) or in ``charts`` imports this package; it imports both.
"""
