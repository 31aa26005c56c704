"""Workloads shared by the cost tests and `make bench`: a 2 KB payload that does not compress to
nothing, and an endpoint answer that echoes the payload."""

from __future__ import annotations

import random
import string
from typing import Any

from tests.support.endpoint import Reply, Request, json_reply

METADATA = {"customer": "acme", "region": "eu"}


def two_kb_payload(number: int) -> dict[str, Any]:
    """About 2 KB of JSON: words of random letters (seeded by `number`)."""
    chooser = random.Random(number)
    words = [
        "".join(chooser.choice(string.ascii_lowercase) for _ in range(chooser.randint(3, 9)))
        for _ in range(290)
    ]
    return {"order": {"id": number, "note": " ".join(words)[:1990]}}


def echo(request: Request) -> Reply:
    """The endpoint's answer: the payload it got, and the run's id."""
    return json_reply({"echo": request.json(), "run_id": request.header("x-run-id")})
