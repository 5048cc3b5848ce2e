"""A partner's webhook receiver for local development and tests: verifies each delivery's
signature as docs/webhooks.md tells partners to (its own code, not Vigie's), deduplicates on
`Vigie-Delivery-Id`, and writes one JSON line per request to `--log`.

    python scripts/webhook_receiver.py --port 8099 --secret-file var/run/webhook-secret \
        --log var/run/webhooks.log

Loopback only. For tests it can misbehave: answer 500 to the first `--fail-first` requests,
then hang on the next `--hang-first` (never answer), and wait `--delay` seconds before each
answer. Each line: time, delivery id, kind, whether the signature verified, whether the id
was seen before, the answer; with `--log-bodies`, also the signature header and the body
(base64), so that another tool can check the signature again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

from aiohttp import web

TOLERANCE_S = 300
MAX_BODY = 1 << 20


def verified(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """`Vigie-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256(secret, "<t>." + body), fresh."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def make_app(
    secret: bytes, log_path: Path, fail_first: int, hang_first: int, delay: float, bodies: bool
) -> web.Application:
    seen: set[str] = set()
    count = 0

    def write(line: dict[str, Any]) -> None:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")

    async def receive(request: web.Request) -> web.Response:
        nonlocal count
        body = await request.content.read(MAX_BODY + 1)
        count += 1
        n = count
        did = request.headers.get("Vigie-Delivery-Id", "")
        header = request.headers.get("Vigie-Signature", "")
        ok = len(body) <= MAX_BODY and verified(secret, header, body, time.time())
        line = {
            "at": time.time(),
            "n": n,
            "delivery_id": did,
            "kind": request.headers.get("Vigie-Event", ""),
            "verified": ok,
            "duplicate": did in seen,
        }
        if bodies:
            line.update(signature=header, body_b64=base64.b64encode(body).decode())
        if not ok:
            write({**line, "answer": 401})
            return web.Response(status=401, text="bad signature")
        if n <= fail_first:
            write({**line, "answer": 500})
            return web.Response(status=500, text="failing on purpose")
        if n <= fail_first + hang_first:
            write({**line, "answer": "hang"})
            await asyncio.sleep(3600)
        write({**line, "answer": "received"})
        if delay:
            await asyncio.sleep(delay)
        seen.add(did)
        write({**line, "answer": 200})
        return web.Response(status=200, text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret-file", required=True, help="the partner's signing secret")
    parser.add_argument("--log", default="var/run/webhooks.log")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--hang-first", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log-bodies", action="store_true", help="signature and body too")
    args = parser.parse_args()
    secret = Path(args.secret_file).read_text().strip().encode()
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    app = make_app(secret, log_path, args.fail_first, args.hang_first, args.delay, args.log_bodies)
    print(f"webhook receiver on 127.0.0.1:{args.port} (pid {os.getpid()})", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
