"""The status parser's worst case: adversarial multi-status answers, per item.

Each input is a 100-item `status` answer whose every item is one kind of hostile
value (issue 9: `int(Decimal("1e500000"))` took 31 s, `"remains": "1e500000"`
stalled the loop 8 s a poll). Decoding and parsing are timed together, as the
client runs them; the figure is the median over rounds, per item. Target: the
slowest kind under 1 ms per item.

    .venv/bin/python bench/parser.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.panel.parsing import decode_body, parse_multi_status

ITEMS = 100  # one request's worth


def _body(item_json: str) -> str:
    return "{" + ",".join(f'"{100_000 + i}": {item_json}' for i in range(ITEMS)) + "}"


def _item(**fields: object) -> str:
    return json.dumps(fields)


INPUTS: dict[str, str] = {
    "baseline (a real item)": _item(charge="0.27819", start_count="3572", status="In progress",
                                    remains="157", currency="USD"),
    'remains "1e500000" (text)': _item(status="In progress", remains="1e500000"),
    "remains 1e500000 (JSON number)": '{"status": "In progress", "remains": 1e500000}',
    "remains 10^30 (JSON int)": '{"status": "In progress", "remains": 1' + "0" * 30 + "}",
    "remains of 4,000 digits (JSON int)": '{"status": "Pending", "remains": ' + "9" * 4_000 + "}",
    "charge of 4,000 digits (text)": _item(status="Pending", charge="1." + "1" * 4_000),
    "no status key": _item(charge="1", remains="5"),
    "Partial without remains": _item(status="Partial", charge="1"),
    "status of 10,000 characters": _item(status="S" * 10_000, remains="1"),
    "item nested 19 deep": '{"status": "Pending", "x": ' + "[" * 18 + "]" * 18 + "}",
    "error of 10,000 characters": _item(error="E" * 10_000),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"status parser: decode + parse of {ITEMS}-item answers, {args.rounds} rounds (medians)")
    worst = ("", 0.0)
    for name, item in INPUTS.items():
        body = _body(item)
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            results = parse_multi_status(decode_body(body))
            times.append(time.perf_counter() - started)
            assert len(results) == ITEMS
        per_item = statistics.median(times) / ITEMS * 1000
        if per_item > worst[1]:
            worst = (name, per_item)
        print(f"  {name:38} {per_item:8.4f} ms/item   ({len(body):>9,} bytes a body)")
    print(f"slowest: {worst[0]}: {worst[1]:.4f} ms per item   (target < 1 ms)")


if __name__ == "__main__":
    main()
