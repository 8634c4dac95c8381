"""The mapping grid of a recurring import: which source column feeds which target, moves
with one-step Undo, inline custom fields, the status bar, and Preview / Import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..extensions import db
from ..hardening import parse_id
from ..imports import runs, schedule
from ..imports.preview import preview_now
from ..models import CustomField, RecurringImport
from . import fields as fields_service
from . import mapping as rules


def custom_fields() -> list[CustomField]:
    return fields_service.all_fields()


def ensure_mapping(imp: RecurringImport, cols: list[rules.Column]) -> dict[str, Any]:
    """On first open, recognise Email, Name and same-named custom fields, and save it."""
    if imp.mapping:
        return dict(imp.mapping)
    mapping = rules.recognise(cols, {f.name: f for f in custom_fields()})
    imp.mapping = mapping
    db.session.commit()
    return mapping


def target_of(mapping: dict[str, Any], source: str) -> Any:
    value = mapping.get(source, rules.UNASSIGNED)
    return rules.UNASSIGNED if value in (None, "") else value


def field_for(target: Any, by_id: dict[int, CustomField]) -> CustomField | None:
    if isinstance(target, int):
        return by_id.get(target)
    if isinstance(target, str) and target.isdigit():
        return by_id.get(int(target))
    return None


def parse_target(raw: str) -> Any:
    """A submitted target: "email", "name", "?" or a custom field id (int). ValueError else."""
    raw = (raw or "").strip()
    if raw in ("email", "name", rules.UNASSIGNED):
        return raw
    field_id = parse_id(raw)
    if field_id is not None and db.session.get(CustomField, field_id) is not None:
        return field_id
    raise ValueError("Choose a target from the list.")


def assign(imp: RecurringImport, source: str, target: Any) -> list[str]:
    """Assign `target` to the `source` column. A target used by another column moves here
    (that column becomes "?"); returns the sources that changed besides `source`."""
    mapping = dict(imp.mapping or {})
    moved = []
    if target != rules.UNASSIGNED:
        for other, value in list(mapping.items()):
            if other != source and value == target:
                mapping[other] = rules.UNASSIGNED
                moved.append(other)
    mapping[source] = target
    imp.mapping = mapping
    db.session.commit()
    return moved


def move_notice(imp: RecurringImport, cols: list[rules.Column], move: dict | None,
                by_id: dict[int, CustomField]) -> dict | None:
    """The warning for a target that `assign` moved ("Email was on X; that column is now
    unassigned"), while the mapping still is as the move left it (else None: nothing to undo)."""
    if not move or move.get("import_id") != imp.id:
        return None
    mapping = imp.mapping or {}
    labels = {c.name: c.label for c in cols}
    others = [o for o in move.get("others", []) if o in labels]
    if (not others or mapping.get(move.get("source")) != move.get("target")
            or any(target_of(mapping, o) != rules.UNASSIGNED for o in others)):
        return None
    what = rules.target_label(move["target"], by_id)
    where = ", ".join(labels[o] for o in others)
    plural = "those columns are" if len(others) > 1 else "that column is"
    return {"text": f"{what} was on {where}; {plural} now unassigned.",
            "source": move["source"], "others": others}


def undo_move(imp: RecurringImport, cols: list[rules.Column], move: dict | None,
              by_id: dict[int, CustomField]) -> tuple[list[str], str] | None:
    """Put a moved target back where it was, and the previous target back on the column that
    took it; (changed columns, what was done in words), or None when nothing is to undo."""
    notice = move_notice(imp, cols, move, by_id)
    if notice is None:
        return None
    mapping = dict(imp.mapping or {})
    source, target, previous = move["source"], move["target"], move.get("previous")
    if previous in (None, "") or (isinstance(previous, int) and previous not in by_id):
        previous = rules.UNASSIGNED
    if previous != rules.UNASSIGNED and any(
            v == previous for k, v in mapping.items() if k != source):
        previous = rules.UNASSIGNED  # taken by another column since: leave that one be
    first = notice["others"][0]
    mapping[first] = target
    mapping[source] = previous
    imp.mapping = mapping
    db.session.commit()
    labels = {c.name: c.label for c in cols}
    done = f"Undone: {rules.target_label(target, by_id)} is back on {labels[first]}."
    return [first], done


def create_field(imp: RecurringImport, column: rules.Column, form) -> tuple[CustomField,
                                                                            list[str]]:
    """Create a custom field inline (FieldDefinitionError on bad input) and assign it."""
    data = {"name": form.get("name"), "type": form.get("type") or "text",
            "format": form.get("format") or "text",
            "allowed_values": form.get("allowed_values") or ""}
    if form.get("format") not in ("checkbox", "radio", "single_select", "multi_select"):
        data["allowed_values"] = ""
    created = fields_service.save_field(data)
    moved = assign(imp, column.name, created.id)
    return created, moved


def set_ignore(imp: RecurringImport, value: bool) -> None:
    imp.ignore_unmapped = value
    db.session.commit()


@dataclass
class Status:
    total: int
    assigned: int
    unassigned: int
    email: str | None
    name: str | None
    ignore: bool
    errors: list[str]

    @property
    def ready(self) -> bool:
        return bool(self.email) and (self.unassigned == 0 or self.ignore)


def status(imp: RecurringImport, cols: list[rules.Column],
           errors: list[str] | None = None) -> Status:
    mapping = imp.mapping or {}
    assigned = [c for c in cols if target_of(mapping, c.name) != rules.UNASSIGNED]
    email = next((c.label for c in cols if mapping.get(c.name) == "email"), None)
    name = next((c.label for c in cols if mapping.get(c.name) == "name"), None)
    return Status(len(cols), len(assigned), len(cols) - len(assigned), email, name,
                  bool(imp.ignore_unmapped), errors or [])


def import_problems(imp: RecurringImport, cols: list[rules.Column]) -> list[str]:
    st = status(imp, cols)
    problems = []
    if not st.email:
        problems.append("Assign a column to Email before importing: every contact needs one.")
    if st.unassigned and not st.ignore:
        problems.append(f"{st.unassigned} column{'s' if st.unassigned != 1 else ''} still "
                        "marked “?”: assign them, or tick “Ignore columns marked ?”.")
    return problems


def clean_mapping(imp: RecurringImport, cols: list[rules.Column]) -> dict[str, Any]:
    """What the engine gets: assigned columns that exist at the source (plus "?" markers)."""
    names = {c.name for c in cols}
    return {k: v for k, v in (imp.mapping or {}).items() if k in names}


def start_import(imp: RecurringImport, cols: list[rules.Column], user_id: int):
    """Save the mapping, enable the schedule (if not running on one already) and start the
    first run. Returns the run (or the live one)."""
    imp.mapping = clean_mapping(imp, cols)
    if imp.state != "active" or imp.next_run_at is None:
        schedule.enable(imp)
    db.session.commit()
    return runs.start_run(imp.id, "manual", user_id=user_id)


def preview(imp: RecurringImport, cols: list[rules.Column], user_id: int) -> dict:
    """The engine's dry run over the first ≤ 1,000 records, in this request."""
    imp.mapping = clean_mapping(imp, cols)
    db.session.commit()
    return preview_now(imp.id, user_id=user_id)
