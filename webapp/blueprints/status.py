"""Placeholder; the pages helper writes this module."""

from flask import Blueprint

bp = Blueprint("status", __name__)
