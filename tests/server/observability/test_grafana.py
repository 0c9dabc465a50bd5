"""deploy/grafana-dashboard.json charts only metrics that the server exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hposerve.server.transport._metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana-dashboard.json"


def test_every_charted_metric_exists() -> None:
    exported = {
        sample_name
        for family in Metrics().registry.collect()
        for sample_name in {
            family.name,
            f"{family.name}_total",
            f"{family.name}_bucket",
            f"{family.name}_count",
            f"{family.name}_sum",
        }
    }
    dashboard = json.loads(DASHBOARD.read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bhposerve_[a-z_]+", target["expr"])
    }
    assert len(charted) >= 10
    assert charted <= exported, charted - exported
