"""aiogram's ``Response[T]`` rebuilt after each garbage collection: the reproduction
for an upstream report (bench/README.md).

aiogram's session parses every Bot API answer with ``Response[method.__returning__]``.
pydantic caches a parametrised generic only in a ``WeakValueDictionary``; nothing
else holds it, so a collection frees it and the next call builds the class again
(schema and validator). Printed per method: what that rebuild costs after
``gc.collect()``, and a lookup while one reference keeps the class alive (what
bot/app/telegram_session.py does), medians of ``--rounds``.

    .venv/bin/python bench/aiogram_rebuild.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

from aiogram.methods import AnswerCallbackQuery, EditMessageText, GetUpdates, SendMessage
from aiogram.methods.base import Response


def build(returning: Any) -> type:
    return Response[returning]  # as aiogram's BaseSession.check_response does, in a function


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(f"Response[T] per Bot API method, {args.rounds} rounds (medians, range)")
    for method in (SendMessage, EditMessageText, AnswerCallbackQuery, GetUpdates):
        rebuilt = []
        for _ in range(args.rounds):
            gc.collect()
            started = time.perf_counter()
            build(method.__returning__)
            rebuilt.append(time.perf_counter() - started)
        kept = build(method.__returning__)  # noqa: F841 (the reference is the point)
        started = time.perf_counter()
        for _ in range(1000):
            build(method.__returning__)
        lookup = (time.perf_counter() - started) / 1000
        print(f"  {method.__name__:20} rebuilt after gc {statistics.median(rebuilt) * 1000:6.2f} ms"
              f" ({min(rebuilt) * 1000:.2f}-{max(rebuilt) * 1000:.2f})   kept alive "
              f"{lookup * 1e6:5.1f} us")


if __name__ == "__main__":
    main()
