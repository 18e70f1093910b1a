"""The secrets store: private files, private dirs, refused when others could read them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cockpit.backends.secrets import SecretStore, db_admin_key, site_db_password_key
from cockpit.config import SecretFileError


def test_put_get_delete_with_private_modes(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    key = site_db_password_key("Shop.Example.Test")
    assert key == ("sites", "shop.example.test", "db-password")
    assert store.get(*key) is None
    store.put(*key, value="s3cret-value_0123456789")
    assert store.get(*key) == "s3cret-value_0123456789"
    path = store.path(*key)
    assert path.stat().st_mode & 0o777 == 0o600
    for directory in (tmp_path / "secrets", path.parent, path.parent.parent):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    store.put(*key, value="rotated-value_0123456789")
    assert store.get(*key) == "rotated-value_0123456789"
    assert "rotated" not in repr(store)
    assert store.delete(*key) and not store.delete(*key)
    assert store.get(*key) is None


def test_a_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    key = db_admin_key("web1", "mysql")
    store.put(*key, value="admin-password-0123456789")
    os.chmod(store.path(*key), 0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        store.get(*key)


def test_a_shared_directory_is_made_private(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir(mode=0o755)
    os.chmod(tmp_path / "secrets", 0o755)
    store = SecretStore(tmp_path / "secrets")
    store.put("servers", "web1", value="x-0123456789abcdef")
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("part", ["", "..", "../x", "a/b", "A", ".hidden", "x y", "é"])
def test_bad_key_parts_are_refused(tmp_path: Path, part: str) -> None:
    with pytest.raises(ValueError):
        SecretStore(tmp_path).path("sites", part)


def test_values_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SecretStore(tmp_path).put("a", value="two\nlines")
