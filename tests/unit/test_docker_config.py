"""Static checks of docker/ (no Docker engine here): it must agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from socialsuggest.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _env_names() -> set[str]:
    names: set[str] = set()
    for service in SERVICES.values():
        env = service.get("environment") or {}
        names |= set(env)
    return names


def test_every_platform_setting_named_in_compose_exists() -> None:
    fields = {f"SOCIALSUGGEST_{name.upper()}" for name in Settings.model_fields}
    used = {n for n in _env_names() if n.startswith("SOCIALSUGGEST_")}
    assert used, "compose passes platform settings"
    assert used - fields - {"SOCIALSUGGEST_PG_PASSWORD"} == set()
    assert SERVICES["api"]["environment"]["SOCIALSUGGEST_PROFILE"] == "services"


def test_images_are_pinned_and_match_what_infra_installs() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
    es_major = SERVICES["elasticsearch"]["image"].rsplit(":", 1)[1].split(".")[0]
    client = re.search(r"^elasticsearch==(\d+)\.", (REPO / "requirements.txt").read_text(), re.M)
    assert client and client.group(1) == es_major
    infra_es = re.search(r'ES_VERSION="\$\{SOCIALSUGGEST_ES_VERSION:-([\d.]+)\}"',
                         (REPO / "infra" / "elasticsearch.sh").read_text())  # fmt: skip
    assert infra_es and SERVICES["elasticsearch"]["image"].endswith(infra_es.group(1))
    infra_s3 = re.search(r"SEAWEEDFS_VERSION:-([\d.]+)", (REPO / "infra" / "s3.sh").read_text())
    assert infra_s3 and SERVICES["s3"]["image"].endswith(infra_s3.group(1))


def test_dependencies_resolve_and_secrets_are_not_inlined() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
    text = (REPO / "docker" / "compose.yaml").read_text()
    for secret in ("AWS_SECRET_ACCESS_KEY", "SOCIALSUGGEST_PG_PASSWORD"):
        assert re.search(rf"\$\{{{secret}:\?", text), f"{secret} must be required from the env"
        for value in re.findall(rf"^\s*{secret}:\s*(\S.*)$", text, re.M):
            assert value.startswith("${"), f"{secret} has a literal value"


def test_dockerfile_uses_the_lock_and_both_targets_exist() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "-r requirements.txt" in dockerfile
    assert "AS platform" in dockerfile and "AS api" in dockerfile
    uv = re.search(r'UV_VERSION="([\d.]+)"', (REPO / "infra" / "bootstrap.sh").read_text())
    assert uv and f"uv=={uv.group(1)}" in dockerfile
    for service in ("mlflow", "api"):
        assert SERVICES[service]["build"]["dockerfile"] == "docker/Dockerfile"
