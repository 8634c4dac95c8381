"""Command-line commands: `flask users …`, `flask scheduler run`, `flask worker`."""

from __future__ import annotations

import secrets

import click
from flask import Flask
from sqlalchemy import func, select

from .extensions import db
from .models import User
from .security import hash_password

users = click.Group("users", help="Manage team members.")


@users.command("create")
@click.argument("email")
@click.option("--password", help="Password (generated and printed when omitted).")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
def create_user(email: str, password: str | None, admin: bool) -> None:
    """Create a team member who can sign in."""
    email = email.strip().lower()
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"A user {email} exists already.")
    generated = password is None
    if password is not None and len(password) < 12:
        raise click.ClickException("Use a password of at least 12 characters.")
    password = password or secrets.token_urlsafe(12)
    db.session.add(User(email=email, password_hash=hash_password(password), is_admin=admin))
    db.session.commit()
    click.echo(f"Created {email}" + (f" with password: {password}" if generated else ""))


@users.command("ensure-admin")
@click.option("--email", default="admin@example.com", show_default=True)
def ensure_admin(email: str) -> None:
    """First run only: create an admin with a generated password and print it once."""
    if db.session.scalar(select(func.count(User.id))):
        return
    password = secrets.token_urlsafe(12)
    db.session.add(User(email=email, password_hash=hash_password(password), is_admin=True))
    db.session.commit()
    click.echo(f"First login: {email} / {password}  (shown once; keep it)")


@users.command("list")
def list_users() -> None:
    for user in db.session.scalars(select(User).order_by(User.id)):
        role = "admin" if user.is_admin else "member"
        click.echo(f"{user.id}\t{user.email}\t{role}" + ("" if user.active else "\tdeactivated"))


def register_cli(app: Flask) -> None:
    from .background import scheduler_cli
    from .imports.cli import imports_cli, secrets_cli
    from .providers.cli import providers_cli

    app.cli.add_command(users)
    app.cli.add_command(imports_cli)
    app.cli.add_command(secrets_cli)
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(providers_cli)
