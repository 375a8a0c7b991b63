from __future__ import annotations

from pathlib import Path

import pytest

from socialsuggest.config import Profile, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SOCIALSUGGEST_HOME", "SOCIALSUGGEST_LAKE_ROOT", "SOCIALSUGGEST_PROFILE",
                 "SOCIALSUGGEST_CONFIG_FILE", "MLFLOW_TRACKING_URI"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_embedded_defaults_live_under_var(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.home == tmp_path / "var"
    assert settings.lake_root == str(tmp_path / "var" / "lake")
    assert settings.profile is Profile.EMBEDDED
    assert settings.spark_master == "local[*]"
    assert settings.retention_days == 180


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("SOCIALSUGGEST_LAKE_ROOT", "s3://bucket/lake")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("SOCIALSUGGEST_PROFILE", "services")
    settings = load_settings()
    assert settings.home == tmp_path / "h"
    assert settings.lake_root == "s3://bucket/lake"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5999"
    assert settings.profile is Profile.SERVICES


def test_optional_file_and_its_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "socialsuggest.env").write_text("SOCIALSUGGEST_RETENTION_DAYS=30\n")
    assert load_settings().retention_days == 30
    monkeypatch.setenv("SOCIALSUGGEST_RETENTION_DAYS", "90")
    assert load_settings().retention_days == 90  # env wins over the file
    monkeypatch.setenv("SOCIALSUGGEST_CONFIG_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(FileNotFoundError, match="SOCIALSUGGEST_CONFIG_FILE"):
        load_settings()


def test_invalid_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALSUGGEST_PROFILE", "cloud")
    with pytest.raises(ValueError, match="profile"):
        load_settings()


def test_missing_datasets_folder_says_where_it_looked(tmp_path: Path) -> None:
    settings = load_settings(datasets_dir=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="SOCIALSUGGEST_DATASETS_DIR"):
        _ = settings.resolved_datasets_dir


def test_services_profile_points_at_the_real_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALSUGGEST_PROFILE", "services")
    monkeypatch.setenv("SOCIALSUGGEST_PG_PASSWORD", "s3cret-from-env")
    settings = load_settings()
    assert settings.lake_root == "s3://socialsuggest/lake"
    assert settings.s3_endpoint_url == "http://127.0.0.1:8333"
    assert settings.catalog_url == "http://127.0.0.1:9200"
    assert settings.mlflow_backend_uri.startswith("postgresql://socialsuggest:s3cret-from-env@")
    shown = settings.describe()
    assert "s3cret" not in str(shown) and "socialsuggest:***@" in shown["mlflow_backend_uri"]
    monkeypatch.setenv("SOCIALSUGGEST_LAKE_ROOT", "s3://other/prefix")
    assert load_settings().lake_root == "s3://other/prefix"  # explicit settings still win
