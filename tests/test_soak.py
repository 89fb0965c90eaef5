"""A few seconds of the chaos soak (benchmarks/soak) on one transport: it runs end to
end, its faults really break links, and nothing it checks is violated."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.soak.__main__ import main


def test_a_short_soak_on_the_sync_transport_passes(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    assert main(["--minutes", "0.1", "--transport", "sync", "--seed", "7", "--json", str(out)]) == 0
    [report] = json.loads(out.read_text())
    assert report["violations"] == []
    assert report["rounds"] >= 1
    assert report["execs_ok"] > 0
    assert report["events"] > 0
    assert len(report["series"]["rows"]) == report["samples"] >= 1
    assert report["series"]["columns"][:2] == ["t", "rss"]
    assert {"heap_used_slope_kib_per_min", "heap_free_slope_kib_per_min"} <= set(report)
    broke = {f for f in report["faults"] if f != "none"}
    assert report["placeos_reconnects"] + report["mews_reconnects"] >= 1 or not broke
