"""Custom-field definitions: create, edit, delete (values stripped from every contact)."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ..customfields import FieldDefinitionError, validate_definition, validate_name
from ..extensions import db
from ..models import CustomField


def all_fields() -> list[CustomField]:
    return list(db.session.scalars(select(CustomField).order_by(CustomField.name)))


def split_values(raw: str | None) -> list[str]:
    """Allowed values as typed: one per line."""
    return [line for line in (raw or "").splitlines() if line.strip()]


def save_field(form, field: CustomField | None = None) -> CustomField:
    """Create a field from form input, or update `field` (whose name stays: imports,
    mappings and stored values refer to it). Raises FieldDefinitionError."""
    type_ = (form.get("type") or "text").strip()
    format_ = (form.get("format") or "text").strip()
    allowed = validate_definition(type_, format_, split_values(form.get("allowed_values")))
    if field is None:
        name = validate_name(form.get("name"))
        if db.session.scalar(select(CustomField.id).where(CustomField.name == name)):
            raise FieldDefinitionError("name", f"A field named {name} exists already.")
        field = CustomField(name=name)
        db.session.add(field)
    field.type, field.format, field.allowed_values = type_, format_, allowed
    field.hidden = form.get("hidden") in ("on", "1", "true", "y")
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise FieldDefinitionError("name", f"A field named {field.name} exists already.") from exc
    return field


def delete_field(field: CustomField) -> None:
    """Delete the definition and strip its key from every contact's custom values in one
    set-based UPDATE (json_remove on SQLite, `-` on PostgreSQL's JSONB)."""
    name = validate_name(field.name)  # names are [a-z0-9_]: safe inside a JSON path too
    if db.session.get_bind().dialect.name == "postgresql":
        sql = text("UPDATE contacts SET custom = custom - CAST(:name AS text) "
                   "WHERE custom ? CAST(:name AS text)")
        params = {"name": name}
    else:
        sql = text("UPDATE contacts SET custom = json_remove(custom, :path) "
                   "WHERE json_type(custom, :path) IS NOT NULL")
        params = {"path": f'$."{name}"'}
    db.session.execute(sql, params)
    db.session.delete(field)
    db.session.commit()
