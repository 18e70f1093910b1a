"""Themes: bundled YAML files, a user themes dir that overrides by name, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.color import Color
from textual.theme import Theme

from cockpit.themes import (
    DEFAULT_THEME,
    ThemeError,
    bundled_theme_dir,
    load_theme,
    load_themes,
    user_theme_dir,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLED = ("cockpit-dark", "cockpit-light", "cockpit-mono")


def test_bundled_themes_load_as_textual_themes() -> None:
    themes = load_themes()
    assert themes.cockpit_names[:3] == BUNDLED
    assert DEFAULT_THEME == "cockpit-dark"
    for name in BUNDLED:
        theme = themes.get(name)
        assert isinstance(theme, Theme)
        assert theme.name == name
    assert themes.get("cockpit-dark").dark
    assert not themes.get("cockpit-light").dark
    assert "textual-dark" in themes.names  # Textual's own themes stay available


def test_the_mono_theme_has_no_hue() -> None:
    mono = load_themes().get("cockpit-mono")
    colours = [
        mono.primary,
        mono.secondary,
        mono.accent,
        mono.foreground,
        mono.background,
        mono.surface,
        mono.panel,
        mono.success,
        mono.warning,
        mono.error,
    ]
    colours += [v for v in mono.variables.values() if v.startswith("#")]
    for value in colours:
        assert value is not None
        r, g, b = Color.parse(value).rgb
        assert r == g == b, value


def test_bundled_themes_live_in_the_package_and_the_repo_dir_points_there() -> None:
    bundled = Path(str(bundled_theme_dir()))
    assert bundled.parent.name == "cockpit"
    assert sorted(p.stem for p in bundled.glob("*.yaml")) == sorted(BUNDLED)
    repo_themes = REPO / "themes"
    assert repo_themes.resolve() == bundled.resolve()


def test_user_theme_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert user_theme_dir() == tmp_path / "cfg" / "cockpit" / "themes"


def test_a_user_theme_overrides_a_bundled_one_by_name_and_adds_new_ones(tmp_path: Path) -> None:
    (tmp_path / "cockpit-dark.yaml").write_text('primary: "#123456"\n')
    (tmp_path / "solar.yml").write_text('name: solar\nprimary: "#B58900"\ndark: false\n')
    themes = load_themes(tmp_path)
    assert themes.get("cockpit-dark").primary == "#123456"
    assert themes.get("solar").dark is False
    assert themes.names[:4] == ["cockpit-dark", "cockpit-light", "cockpit-mono", "solar"]


def test_the_default_user_dir_is_read(tui_home: Path) -> None:
    directory = tui_home / ".config" / "cockpit" / "themes"
    directory.mkdir(parents=True)
    (directory / "mine.yaml").write_text('primary: "red"\n')
    assert "mine" in load_themes().names


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ThemeError) as info:
        load_themes().get("nope")
    message = str(info.value)
    assert message.startswith("unknown theme 'nope'; valid themes: cockpit-dark, cockpit-light")
    assert "cockpit-mono" in message and "nord" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("primary: [unclosed\n", "broken.yaml:2:1: did not find expected ','"),
        ("- just\n- a list\n", "a theme must be a mapping"),
        ('primary: "#123456"\nprimry2: "#000000"\n', "primry2: unknown key"),
        ("dark: true\n", "missing required key 'primary'"),
        ('primary: "not a colour"\n', "broken.yaml:1:1: primary: 'not a colour' is not a colour"),
        ('primary: "#123456"\ndark: "yes"\n', "dark: must be true or false"),
        ('primary: "#123456"\nname: other\n', "must match the file name ('broken')"),
        ('primary: "#123456"\ntext_alpha: 3\n', "text_alpha: must be at most 1"),
        ('primary: "#123456"\nvariables: {"bad name": x}\n', "is not a CSS variable name"),
    ],
)
def test_a_malformed_theme_file_is_an_error_naming_it(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    with pytest.raises(ThemeError) as info:
        load_theme(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_a_malformed_user_theme_is_not_skipped_silently(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("primary: 12\n")
    with pytest.raises(ThemeError, match=r"bad\.yaml:1:1: primary: must be a string"):
        load_themes(tmp_path)


def test_make_app_reports_a_malformed_user_theme(tui_home: Path, fresh_cockpit: object) -> None:
    from cockpit.app import make_app
    from cockpit.core import Cockpit

    assert isinstance(fresh_cockpit, Cockpit)
    directory = tui_home / ".config" / "cockpit" / "themes"
    directory.mkdir(parents=True)
    (directory / "cockpit-dark.yaml").write_text("primary: '#zzz'\n")
    with pytest.raises(ThemeError, match=r"cockpit-dark\.yaml"):
        make_app(fresh_cockpit)
