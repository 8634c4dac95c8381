"""The lock file pins what pyproject.toml allows, with hashes, past the known CVE floors."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

# Versions below these have published vulnerabilities the app is exposed to.
SECURITY_FLOORS = {
    "requests": "2.32.4",  # CVE-2024-35195, CVE-2024-47081
    "cryptography": "42.0.4",  # CVE-2024-26130
    "authlib": "1.3.1",  # CVE-2024-37568
}


def _locked() -> dict[str, tuple[Version, list[str]]]:
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", block)
        if match:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
            pins[canonicalize_name(match.group(1))] = (Version(match.group(2)), hashes)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_is_pinned_inside_its_range():
    pins = _locked()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock (run make lock)"
        version, _ = pins[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {req.name}=={version}, outside {req.specifier}"
        )


def test_every_pin_carries_hashes():
    pins = _locked()
    assert len(pins) > 20
    assert all(hashes for _, hashes in pins.values()), [
        name for name, (_, hashes) in pins.items() if not hashes
    ]


def test_floors_past_known_vulnerabilities():
    declared = {canonicalize_name(r.name): r for r in _declared()}
    pins = _locked()
    for name, floor in SECURITY_FLOORS.items():
        assert not declared[name].specifier.contains(_just_below(floor)), (
            f"pyproject.toml still admits a vulnerable {name} below {floor}"
        )
        assert pins[name][0] >= Version(floor)


def _just_below(version: str) -> str:
    parts = [int(p) for p in version.split(".")]
    parts[-1] -= 1
    return ".".join(str(p) for p in parts)
