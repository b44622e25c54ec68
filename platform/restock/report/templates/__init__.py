"""Jinja2 templates of reports and the review page (package data)."""
