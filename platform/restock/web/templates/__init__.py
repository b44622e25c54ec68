"""Jinja2 templates of the review page (package data)."""
