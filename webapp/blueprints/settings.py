"""Placeholder; the pages helper writes this module."""

from flask import Blueprint

bp = Blueprint("settings", __name__)
