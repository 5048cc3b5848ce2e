"""Queries on `partners`: the partner registry (`agents.core.partners`), every version of
every entry (the highest version of an org is its current entry; history is kept).

`entry` is the entry's JSON form with its credentials (`partner_to_dict(...,
with_credentials=True)`): the console and the CLI never return that column as is.
"""

from __future__ import annotations

from agents.ports.sql.query import Query, latest

TABLE = "partners"

_COLUMNS = ("org", "version", "active", "entry", "updated_at", "updated_by")
_SELECT = ", ".join(_COLUMNS)

# The current entry of every partner (active or not), by org; at most `limit`.
CURRENT = Query(
    "partners.CURRENT",
    f"SELECT {_SELECT} FROM partners FINAL WHERE {latest(TABLE, 'org')}"
    " ORDER BY org LIMIT %(limit)s",
    _COLUMNS,
    TABLE,
)

# Every version of partner `org`, newest first; at most `limit`.
HISTORY = Query(
    "partners.HISTORY",
    f"SELECT {_SELECT} FROM partners FINAL WHERE org = %(org)s"
    " ORDER BY version DESC LIMIT %(limit)s",
    _COLUMNS,
    TABLE,
)

# Cheap fingerprint of the registry (any write changes it): rows and their version sum.
FINGERPRINT = Query(
    "partners.FINGERPRINT",
    "SELECT count() AS n, sum(version) AS v FROM partners",
    ("n", "v"),
    TABLE,
)
