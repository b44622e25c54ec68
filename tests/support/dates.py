"""A fixed last history day for tests that generate a demo warehouse.

The demo's demand follows the calendar (quiet weekends), so a warehouse ending "yesterday"
changes from day to day, and a test that needs, say, some orders held and some sent passed on
some days and not on others. Tests pin the end instead (their planning date is the history's
end + 1, ``as_of: history_end``).
"""

from __future__ import annotations

from datetime import date

PINNED_END = date(2026, 11, 25)
