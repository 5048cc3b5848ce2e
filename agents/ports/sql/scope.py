"""`Scope`: the console's category / commune / jurisdiction filters, rendered for one table."""

from __future__ import annotations

from typing import Any


class Scope:
    """Category / commune / jurisdiction filters rendered for one table (parameters
    `f_category`, `f_insee`, `f_jurisdiction` or, for alerts, `f_jur_codes`)."""

    def __init__(
        self,
        category: str | None = None,
        insee: str | None = None,
        jurisdiction: str | None = None,
        jurisdiction_codes: list[str] | None = None,
    ) -> None:
        self.category = category
        self.insee = insee
        self.jurisdiction = jurisdiction
        # communes of the jurisdiction (alerts carry communes, not jurisdictions)
        self.jurisdiction_codes = jurisdiction_codes or []

    def conditions(self, table: str, params: dict[str, Any]) -> list[str]:
        """The conditions on `table` ("reports", "incidents" or "alerts"); their parameter
        values go to `params`."""
        out: list[str] = []
        if self.category:
            out.append("category = %(f_category)s")
            params["f_category"] = self.category
        if self.insee:
            if table == "alerts":
                out.append("has(insee, %(f_insee)s)")
            else:
                out.append("insee = %(f_insee)s")
            params["f_insee"] = self.insee
        if self.jurisdiction:
            if table == "alerts":
                out.append("hasAny(insee, %(f_jur_codes)s)")
                params["f_jur_codes"] = self.jurisdiction_codes or [""]
            else:
                out.append("jurisdiction = %(f_jurisdiction)s")
                params["f_jurisdiction"] = self.jurisdiction
        return out
