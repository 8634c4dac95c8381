"""Placeholder; the pages helper writes this module."""

from flask import Blueprint

bp = Blueprint("suppression", __name__)
