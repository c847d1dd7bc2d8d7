"""The Monitoring page's metric list is the exporters' own table (app/telemetry/instruments.py), row for row."""

from __future__ import annotations

from docs_site import built

from app.telemetry.instruments import INSTRUMENTS


def test_the_monitoring_page_lists_every_instrument_with_its_prometheus_name_kind_and_unit():
    page = built("operations/monitoring.md")
    rows = [line for line in page.splitlines() if line.startswith("| `") and "` | `" in line]
    listed = {row.split(" | ")[0].strip("| `"): row for row in rows}
    assert [i.name for i in INSTRUMENTS if i.name not in listed] == []
    for instrument in INSTRUMENTS:
        row = listed[instrument.name]
        assert f"| `{instrument.prometheus}` | {instrument.kind} | `{instrument.unit}` |" in row
        assert all(f"`{attribute}`" in row for attribute in instrument.attributes)
    budget = listed["taskrouter.budget.limit"]
    assert "| none |" in budget and "DAILY\\_BUDGET\\_USD" in budget  # Markdown's _ shown as typed
