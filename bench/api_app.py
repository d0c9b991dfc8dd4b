"""App factory for ``uvicorn --workers N`` in ``bench/api_bench.py --processes N``.

Each worker process builds the API of an already bootstrapped data dir
(``VBS_BENCH_DATA_DIR``): no job workers, no scheduler (the first ``vbs
serve`` of the benchmark runs those). The API is stateless between requests
(tokens, pages and jobs live in the database), so N processes behind one
listening socket serve the same answers as one, on N interpreters.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

__all__ = ["make_app"]


def make_app() -> FastAPI:
    from vbs.bootstrap import build_app, open_repository
    from vbs.config import load_settings
    from vbs.db.session import Database

    settings = load_settings(None, Path(os.environ["VBS_BENCH_DATA_DIR"]), None)
    return build_app(settings, Database(settings.database.url), open_repository(settings))
