"""The execution environment's Helm step, run by a real shell with the download stubbed: it verifies the tarball
against a sha256 pinned in the repository (never one fetched beside it), for the build's architecture, and stops
when a version has no pin."""

from __future__ import annotations

import hashlib
import re
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
VERSIONS = dict(line.split("=", 1) for line in (ROOT / "hack" / "versions.env").read_text().splitlines() if "=" in line)
STEP = next(s for s in DEFINITION["additional_build_steps"]["append_final"] if s.startswith("RUN "))
STUB_BYTES = b"not a helm release\n"
# Stands in for the EE's Python: the download writes known bytes, and nothing gets past the checksum.
STUB_PYTHON = f"""#!/bin/sh
case "$2" in *urlretrieve*) printf '{STUB_BYTES.decode().strip()}\\n' > "$3";; *) echo unpacked; exit 0;; esac
"""


def build(tmp_path: Path, **args: str) -> subprocess.CompletedProcess[str]:
    python = tmp_path / "python"
    python.write_text(STUB_PYTHON)
    python.chmod(0o755)
    script = STEP[len("RUN ") :].replace("cd /tmp;", f"cd {tmp_path};").replace("install -m", "echo install -m")
    script = script.replace("helm version", "echo done")
    env = {"PATH": "/usr/bin:/bin", "PYCMD": str(python), "HELM_SHA256": "", **args}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=False)


def test_the_default_helm_is_the_tested_one() -> None:
    default = re.search(r"ARG HELM_VERSION=(\S+)", "\n".join(DEFINITION["additional_build_steps"]["append_final"]))
    assert default and default.group(1) == VERSIONS["HELM3_VERSION"]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_default_helm_is_verified_against_its_pinned_sha256(tmp_path: Path, arch: str) -> None:
    done = build(tmp_path, HELM_VERSION=VERSIONS["HELM3_VERSION"], HELM_ARCH=arch)
    assert done.returncode != 0, "the stub's bytes are not Helm: the pinned sha256 must refuse them"
    assert f"helm-{VERSIONS['HELM3_VERSION']}-linux-{arch}.tar.gz: FAILED" in done.stdout + done.stderr
    assert "unpacked" not in done.stdout


def test_a_version_without_a_pin_stops_the_build(tmp_path: Path) -> None:
    done = build(tmp_path, HELM_VERSION=VERSIONS["HELM4_VERSION"], HELM_ARCH="amd64")
    assert done.returncode == 1
    assert "no sha256 pinned for helm-v4" in done.stderr and "HELM_SHA256" in done.stderr


def test_a_version_with_its_sha256_given_is_verified_and_installed(tmp_path: Path) -> None:
    given: dict[str, t.Any] = {"HELM_SHA256": hashlib.sha256(STUB_BYTES).hexdigest()}
    done = build(tmp_path, HELM_VERSION=VERSIONS["HELM4_VERSION"], HELM_ARCH="arm64", **given)
    assert done.returncode == 0, done.stderr
    assert f"helm-{VERSIONS['HELM4_VERSION']}-linux-arm64.tar.gz: OK" in done.stdout
    assert "install -m 0755 /tmp/helm /usr/local/bin/helm" in done.stdout
