"""Placeholder; the pages helper writes this module."""

from flask import Blueprint

bp = Blueprint("lists", __name__)
