"""Write the JSON Schema of each contract v1 message to `schemas/json/` (for subscribers).

    python -m schemas.export          # rewrite the files
    python -m schemas.export --check  # exit 1 if a committed file is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.alert import Alert
from schemas.feedback import Feedback
from schemas.incident import Incident
from schemas.rejection import RejectedReport
from schemas.report import Report

OUT = Path(__file__).parent / "json"
MESSAGES: dict[str, type[BaseModel]] = {
    "report.v1.schema.json": Report,
    "incident.v1.schema.json": Incident,
    "alert.v1.schema.json": Alert,
    "rejected-report.v1.schema.json": RejectedReport,
    "feedback.v1.schema.json": Feedback,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, model in MESSAGES.items():
        path = OUT / name
        text = render(model)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
