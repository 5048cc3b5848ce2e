"""The worker's local API token: what lets local tools read `/counts` on the worker's port.

At start a worker writes a random token to `<VIGIE_WORKER_DATA_DIR>/local-api-token` (mode
0600, replaced atomically, a new one at each start) and answers `/counts` only to requests
bearing it. Whoever can read that file (the worker's user, on the worker's host or
container) may ask; nobody else can: filesystem permission is the authentication, as for a
Unix socket. One data directory per worker: a second worker on the same directory would
replace the first one's token.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

TOKEN_FILE = "local-api-token"


class LocalTokenError(RuntimeError):
    """The worker's token file is missing or unreadable (no worker on that data dir?)."""


def token_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / TOKEN_FILE


def write_token(data_dir: str | Path) -> str:
    """A new random token, written to `data_dir`'s token file (0600, atomic replace)."""
    directory = Path(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd, tmp = tempfile.mkstemp(prefix=f".{TOKEN_FILE}.", dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, token_path(directory))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return token


def read_token(data_dir: str | Path) -> str:
    path = token_path(data_dir)
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalTokenError(
            f"cannot read the worker's local API token {path} ({exc.__class__.__name__}): "
            "is a worker running with this VIGIE_WORKER_DATA_DIR, as this user?"
        ) from exc
    if not token:
        raise LocalTokenError(f"the worker's local API token file {path} is empty")
    return token


def auth_header(data_dir: str | Path) -> dict[str, str]:
    """The `Authorization` header a local tool sends to the worker's `/counts`."""
    return {"Authorization": f"Bearer {read_token(data_dir)}"}


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header carries `token` (constant-time comparison)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def get_json(url: str, data_dir: str | Path, timeout: float = 10) -> Any:
    """GET `url` on a worker with the token of `data_dir`; its JSON body."""
    request = urllib.request.Request(url, headers=auth_header(data_dir))
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())
