"""The command line of ``python server.py``: serve, manage keys, show settings.

python server.py                     # serve on HOST:PORT (127.0.0.1:5000) with DATA_DIR
python server.py keys create write   # print a new key (shown once) and store its hash
python server.py keys list           # key ids and scopes, never the keys
python server.py keys revoke ID
python server.py settings            # every setting, its value and what it does
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from streaming.errors import RilletError
from streaming.settings import Settings
from streaming.web.auth import KeyRing


def main(
    argv: list[str],
    serve: Callable[[Settings], None],
    serve_worker: Callable[[Settings], None],
) -> int:
    """Run the command ``argv`` names; with none, ``serve`` the settings from the environment
    (``worker``: one of the serving processes ``serve`` starts, not for people)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
        if argv[:1] == ["keys"]:
            return keys_command(settings, argv[1:])
        if argv == ["worker"]:
            serve_worker(settings)
            return 0
        if argv[:1] == ["settings"]:
            for name, value, help_text in settings.describe():
                print(f"{name}={value}\n    {help_text}")
            return 0
        if argv:
            print(__doc__, file=sys.stderr)
            return 2
        serve(settings)
    except RilletError as exc:
        print(f"rillet: {exc.message}", file=sys.stderr)
        return 1
    return 0


def keys_command(settings: Settings, argv: list[str]) -> int:
    ring = KeyRing(settings.data_dir / "keys.json", settings.api_keys)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    action = argv[0] if argv else "list"
    if action == "create":
        scope = argv[1] if len(argv) > 1 else "read"
        key_id, key = ring.create(scope)
        print(f"{key_id} ({scope}): {key}\nStore it now: only its hash is kept.")
    elif action == "list":
        for entry in ring.listing():
            print(
                f"{entry['id']}\t{entry['scope']}\t{entry['created_at'] or '-'}\t{entry['source']}"
            )
    elif action == "revoke" and len(argv) == 2:
        ring.revoke(argv[1])
        print(f"revoked {argv[1]}")
    else:
        print(
            "usage: python server.py keys create [read|write] | list | revoke ID", file=sys.stderr
        )
        return 2
    return 0
