"""The JSON document matches its published schema (and the schema is strict enough to
catch a broken one); the Prometheus exposition parses with Prometheus' own parser and
says what the report says; the text is a Nagios plugin's, sanitised."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from statuskit import NOW, all_healthy, config, fleet_store, healthy
from test_evaluate import (
    _disk,
    cert_crit,
    cert_unreadable,
    config_failing,
    disk_filling,
    probe_500,
    probe_no_answer,
    site_bandwidth_warn,
    task_failed,
)

from cockpit.status import output
from cockpit.status.evaluate import Report, evaluate
from cockpit.store import metrics


async def _report(tmp_path: Path) -> Report:
    db = await fleet_store(tmp_path / "c.db", servers=3, client_quotas={"bandwidth_mb_month": 10})
    try:
        await all_healthy(db)
        for setup in (disk_filling, probe_no_answer, cert_crit, task_failed, site_bandwidth_warn):
            await setup(db)
        async with db.write() as conn:
            await metrics.record_server(
                conn, "web3", at=NOW, reachable=False, error='refused "\x1b[31mred\x1b[0m"\n'
            )
            await metrics.record_server(
                conn, "web2", at=NOW, reachable=True, data=healthy(pending_reboot=True)
            )
        return await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()


async def test_json_validates_against_the_schema(tmp_path: Path) -> None:
    report = await _report(tmp_path)
    document = json.loads(json.dumps(output.to_json(report)))
    schema = output.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
    assert document["state"] == "CRITICAL" and document["exit_code"] == 2
    checks = {p["check"] for p in document["problems"]}
    assert checks == {
        "server.unreachable",
        "server.reboot",
        "disk.filling",
        "site.probe",
        "site.certificate",
        "task.failed",
        "quota.bandwidth",
    }
    assert document["counts"]["critical"] == sum(
        1 for p in document["problems"] if p["state"] == "CRITICAL"
    )
    assert [s["name"] for s in document["servers"]] == ["web1", "web2", "web3"]


@pytest.mark.parametrize(
    "breakage",
    ["drop a required field", "unknown state", "unknown check", "extra field", "bad time"],
)
async def test_the_schema_refuses_a_broken_document(tmp_path: Path, breakage: str) -> None:
    document = json.loads(json.dumps(output.to_json(await _report(tmp_path))))
    broken = copy.deepcopy(document)
    if breakage == "drop a required field":
        del broken["problems"][0]["reason"]
    elif breakage == "unknown state":
        broken["state"] = "BROKEN"
    elif breakage == "unknown check":
        broken["problems"][0]["check"] = "server.on_fire"
    elif breakage == "extra field":
        broken["servers"][0]["colour"] = "red"
    else:
        broken["generated_at"] = "yesterday"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, output.schema(), format_checker=jsonschema.FormatChecker())


async def test_prometheus_exposition_parses_and_agrees(tmp_path: Path) -> None:
    report = await _report(tmp_path)
    text = output.to_prometheus(report)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["cockpit_status"].samples[0].value == 2
    problems = {s.labels["state"]: s.value for s in families["cockpit_problems"].samples}
    by_state = report.by_state()
    assert problems == {s.name.lower(): by_state[s] for s in by_state if s.name != "OK"}
    up = {s.labels["server"]: s.value for s in families["cockpit_server_up"].samples}
    assert up == {"web1": 1, "web2": 1, "web3": 0}
    listed = {(s.labels["check"], s.labels["subject"]) for s in families["cockpit_problem"].samples}
    assert listed == {(p.check, p.subject) for p in report.problems}
    statuses = {s.labels["site"]: s.value for s in families["cockpit_site_http_status"].samples}
    assert statuses["s1.web1.example"] == 0 and statuses["s0.web1.example"] == 200
    expiry = {
        s.labels["site"]: s.value
        for s in families["cockpit_site_certificate_expiry_timestamp_seconds"].samples
    }
    assert expiry["s0.web2.example"] == NOW + 2 * 86400
    reboot = {
        s.labels["server"]: s.value for s in families["cockpit_server_reboot_pending"].samples
    }
    assert reboot["web2"] == 1 and reboot["web1"] == 0
    disk = {
        (s.labels["server"], s.labels["mount"]): s.value
        for s in families["cockpit_disk_used_ratio"].samples
    }
    assert disk[("web1", "/srv")] == pytest.approx(0.4)


async def test_every_prometheus_series_is_unique(tmp_path: Path) -> None:
    """node_exporter's textfile collector refuses a file with a series twice: a mount
    full of data and of inodes, and every other kind of problem at once, give one
    series per name and label set."""
    db = await fleet_store(tmp_path / "c.db", servers=3, client_quotas={"bandwidth_mb_month": 10})
    try:
        await all_healthy(db)
        for setup in (disk_filling, probe_no_answer, cert_crit, task_failed, site_bandwidth_warn):
            await setup(db)
        for setup in (config_failing, probe_500, cert_unreadable):
            await setup(db)
        services = healthy()["services"]
        services[1] = {**services[1], "running": False}
        async with db.write() as conn:
            await metrics.record_server(
                conn,
                "web2",
                at=NOW,
                reachable=True,
                data=healthy(
                    disks=_disk(990.0, inodes=97.5),
                    services=services,
                    pending_reboot=True,
                    clock_offset_ms=45000.0,
                ),
            )
            await metrics.record_server(conn, "web3", at=NOW - 7200, reachable=True, data={})
        report = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    on_srv = {p.check for p in report.problems if p.subject == "web2:/srv"}
    assert on_srv == {"disk.full", "disk.inodes"}
    assert len(report.problems) >= 12
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    samples = 0
    for family in text_string_to_metric_families(output.to_prometheus(report)):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in seen, f"series twice: {sample.name}{sample.labels}"
            seen.add(key)
            samples += 1
    assert samples > len(report.problems)


async def test_text_is_a_nagios_plugin_line_then_sanitised_problems(tmp_path: Path) -> None:
    report = await _report(tmp_path)
    lines = output.to_text(report)
    assert lines[0].startswith("COCKPIT CRITICAL - ")
    assert "| critical=" in lines[0]
    assert len(lines) == 1 + len(report.problems)
    assert lines[1].startswith("CRITICAL")
    assert all("\x1b" not in line and "\n" not in line for line in lines)
    assert any("refused" in line and "web3" in line for line in lines)
    short = output.to_text(report, limit=2)
    assert len(short) == 4 and short[-1].startswith(f"… and {len(report.problems) - 2} more")


async def test_prometheus_needs_the_line_of_every_site(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        await all_healthy(db)
        lean = await evaluate(db, config(db.path), now=NOW, sites=False)
    finally:
        await db.close()
    with pytest.raises(ValueError, match="every site"):
        output.to_prometheus(lean)
    assert output.to_json(lean)["counts"]["sites"] == 4
