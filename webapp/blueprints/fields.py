"""Placeholder; the pages helper writes this module."""

from flask import Blueprint

bp = Blueprint("fields", __name__)
