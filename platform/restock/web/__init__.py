"""The review page: access control, pages and their templates and assets (package data)."""
