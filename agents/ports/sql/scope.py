"""`Scope`: the console's category / commune / jurisdiction filters, rendered for one table."""

from __future__ import annotations

from typing import Any


class Scope:
    """Category / commune / jurisdiction filters rendered for one table (parameters
    `f_category`, `f_insee`, `f_jurisdiction` or, for alerts, `f_jur_codes`), and the
    caller's perimeter: `perimeter_insee` (None: the whole area; else the only communes it
    may see, parameter `p_insee`) and `perimeter_categories` (empty: all; `p_categories`).
    The perimeter is the server's access control (a partner's scope), never a user filter."""

    def __init__(
        self,
        category: str | None = None,
        insee: str | None = None,
        jurisdiction: str | None = None,
        jurisdiction_codes: list[str] | None = None,
        perimeter_insee: tuple[str, ...] | None = None,
        perimeter_categories: tuple[str, ...] = (),
    ) -> None:
        self.category = category
        self.insee = insee
        self.jurisdiction = jurisdiction
        # communes of the jurisdiction (alerts carry communes, not jurisdictions)
        self.jurisdiction_codes = jurisdiction_codes or []
        self.perimeter_insee = perimeter_insee
        self.perimeter_categories = perimeter_categories

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
        if self.perimeter_insee is not None:
            if not self.perimeter_insee:
                out.append("0 = 1")  # an empty perimeter sees nothing
            elif table == "alerts":
                out.append("hasAny(insee, %(p_insee)s)")
                params["p_insee"] = sorted(self.perimeter_insee)
            else:
                out.append("insee IN %(p_insee)s")
                params["p_insee"] = tuple(sorted(self.perimeter_insee))
        if self.perimeter_categories:
            out.append("category IN %(p_categories)s")
            params["p_categories"] = tuple(sorted(self.perimeter_categories))
        return out
