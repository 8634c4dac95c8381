"""`flask providers sample` against every simulator over real HTTP."""

from __future__ import annotations

import importlib
import json

import pytest

from simulators.dataset import generate
from simulators.server import serve
from webapp.providers import PROVIDER_NAMES


@pytest.fixture(params=PROVIDER_NAMES)
def simulator(request, tmp_path):
    module = importlib.import_module(f"simulators.{request.param}")
    app = module.create_app(generate(120, seed=3))
    running = serve(app)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(module.demo_config(app, running.url)))
    yield request.param, config
    running.stop()


@pytest.fixture
def loopback_app(app):
    app.config["ALLOW_LOOPBACK_PROVIDERS"] = True
    return app


def test_sample_prints_json_lines_and_a_summary(loopback_app, simulator):
    name, config = simulator
    result = loopback_app.test_cli_runner().invoke(
        args=["providers", "sample", name, "--config", str(config), "--limit", "7"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 7
    first = json.loads(lines[0])
    assert {"source_id", "email", "consent", "updated_at", "fields"} <= set(first)
    assert f"{name} " in result.stderr and "7 records" in result.stderr


def test_sample_all_walks_every_record(loopback_app, simulator):
    name, config = simulator
    result = loopback_app.test_cli_runner().invoke(
        args=["providers", "sample", name, "--config", str(config), "--all"]
    )
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["source_id"] for line in result.stdout.strip().splitlines()]
    assert len(ids) == len(set(ids)) == 120


def test_sample_since_filters(loopback_app, simulator):
    name, config = simulator
    result = loopback_app.test_cli_runner().invoke(
        args=["providers", "sample", name, "--config", str(config), "--all",
              "--since", "2026-03-15T00:00:00+0000"]
    )
    assert result.exit_code == 0, result.output
    stamps = [json.loads(line)["updated_at"] for line in result.stdout.strip().splitlines()]
    assert 0 < len(stamps) < 120


def test_sample_refuses_loopback_unless_allowed(app, simulator):
    name, config = simulator
    result = app.test_cli_runner().invoke(
        args=["providers", "sample", name, "--config", str(config)]
    )
    assert result.exit_code != 0
    assert "configuration" in result.output or "not allowed" in result.output
