"""One correlate batch's state writes, all or none, across a kill: a redo journal per partition.

The correlate agent persists a batch as many table records per partition (the incident
states it changed, evictions, the watermark, place records, the learnt estimates), each sent
to the changelog in turn. A kill between two of them used to leave part of the batch in the
state: the replay then decided the batch's other reports on incidents and estimates the
first run never had (a report told "rattaché" could end up alone, and the same incident
version could be published twice with other members).

So each partition's writes of a batch go first into the journal, `__journal__/<i>/<p>` for
part i of n, all tagged with one random token, then to their own keys. The parts are sent
in the order 1 .. n-1 then 0 (the head, which says n), before any of the batch's own
records, to the same changelog partition p: the broker keeps that order. Restoring a
partition (`pending`): a head whose parts all carry its token is a batch that may be
part-applied, and its writes are applied again (each is a whole record: applying it twice
is applying it once). A head whose parts do not all match belongs to an older batch that
was fully written before the next one began (a batch starts only once the previous one's
writes are confirmed): nothing to do. No head: nothing. A restored partition thus holds
either the state before a batch or after it, never a mix: the replay of the unacked batch
then makes the same decisions (before) or finds its reports already merged (after).

The local store (`agents.faust_agents.IncidentStates`) takes a batch only once the broker
confirmed all of it, in one atomic RocksDB write with the changelog offset of its last
record, and never the journal: a restart's recovery reads the records after that offset,
so it brings back a batch's journal before any of its writes, and `settle` writes the batch
again and drops the journal's local copy.

The journal is one more record per partition and batch (more only when the batch's writes
exceed one record: `max_part_bytes`, kept under the broker's message limit), overwritten
by the next batch; the changelog topic is compacted.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

JOURNAL_KEY = "__journal__"


@dataclass(frozen=True, slots=True)
class Write:
    """One table write: a key, its new value (None: the key is deleted) and that value's
    JSON (`encode`; None for a delete), made once for the journal, the local store and the
    changelog alike."""

    key: str
    value: Any
    raw: bytes | None

    @classmethod
    def of(cls, key: str, value: Any) -> Write:
        return cls(key, value, None if value is None else encode(value))


def encode(value: Any) -> bytes:
    """A table value's JSON, as the table's `json` codec writes it (orjson, non-string keys
    allowed)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def part_budget(max_message_bytes: int) -> int:
    """The encoded writes a journal part may hold so that its record fits the producer's
    `max_message_bytes`: a tenth and 4 KiB left for the key, the part's own fields and the
    record's framing."""
    return max(4096, max_message_bytes * 9 // 10 - 4096)


def journal_key(partition: int, part: int) -> str:
    """The table key of one journal part (the partition last, as every per-partition key)."""
    return f"{JOURNAL_KEY}/{part}/{partition}"


def _size(write: Write) -> int:
    """The bytes one write takes inside a journal part's JSON object (`"key":value,`)."""
    return len(write.key) + 4 + (4 if write.raw is None else len(write.raw))


def journal_parts(token: str, writes: Sequence[Write], max_part_bytes: int) -> list[Write]:
    """The journal records of one partition's batch, in part order (keys as `journal_key`
    of partition 0: `journal_writes` places them): the writes cut into parts of at most
    `max_part_bytes` of encoded writes (a single larger write is a part of its own, as large
    as that record would be anyway; deflated, a part is smaller). Each part's writes are the
    writes' own JSON (`part_writes` reads them back)."""
    groups: list[list[Write]] = []
    current: list[Write] = []
    size = 0
    for write in writes:
        n = _size(write)
        if current and size + n > max_part_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(write)
        size += n
    groups.append(current)
    parts: list[Write] = []
    for i, group in enumerate(groups):
        body = b",".join(encode(w.key) + b":" + (w.raw or b"null") for w in group)
        value = {"token": token, "parts": len(groups), "part": i, "z": _pack(b"{" + body + b"}")}
        parts.append(Write(journal_key(0, i), value, encode(value)))
    return parts


def _pack(writes_json: bytes) -> str:
    """A part's writes as stored: their JSON, deflated (fastest level: state JSON repeats
    its field names, so the journal costs the changelog a fraction of the batch's bytes),
    in base64 so that the part stays a JSON object the table's codec reads."""
    return base64.b64encode(zlib.compress(writes_json, 1)).decode("ascii")


def part_writes(part: Any) -> dict[str, Any] | None:
    """A journal part's writes (key -> value), or None when it is not a readable part."""
    if not isinstance(part, dict) or not isinstance(part.get("z"), str):
        return None
    try:
        writes = orjson.loads(zlib.decompress(base64.b64decode(part["z"], validate=True)))
    except (ValueError, zlib.error):  # binascii.Error and orjson's error are ValueErrors
        return None
    return writes if isinstance(writes, dict) else None


@dataclass(frozen=True, slots=True)
class Pending:
    """A journalled batch of one partition, to apply again."""

    token: str
    parts: int
    writes: list[Write]


def pending(read: Callable[[str], Any], partition: int) -> Pending | None:
    """The partition's journalled batch when all its parts are there (see the module
    docstring), else None."""
    head = read(journal_key(partition, 0))
    if not isinstance(head, dict):
        return None
    token, n = head.get("token"), head.get("parts")
    if not isinstance(token, str) or not isinstance(n, int) or n < 1:
        return None
    parts = [head] + [read(journal_key(partition, i)) for i in range(1, n)]
    if any(not isinstance(p, dict) or p.get("token") != token for p in parts):
        return None
    writes = [part_writes(p) for p in parts]
    if any(w is None for w in writes):
        return None
    return Pending(token, n, [Write.of(k, v) for w in writes if w for k, v in w.items()])


def journal_writes(partition: int, parts: Sequence[Write], previous_parts: int) -> list[Write]:
    """The writes that journal a batch, in their order: parts 1 .. n-1, the previous batch's
    parts beyond n deleted (their head is not written yet, so they are never read as a
    batch), then the head."""
    n = len(parts)

    def placed(i: int) -> Write:
        return Write(journal_key(partition, i), parts[i].value, parts[i].raw)

    out = [placed(i) for i in range(1, n)]
    out += [Write(journal_key(partition, i), None, None) for i in range(n, previous_parts)]
    out.append(placed(0))
    return out
