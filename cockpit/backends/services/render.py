"""Config files from jinja2 templates, with every interpolated value whitelisted.

Templates live in ``cockpit/backends/templates/`` (``nginx/vhost.conf.j2``…); a file of
the same relative path under ``config_dir()/templates/`` overrides the built-in one.

The environment is strict: an undefined name is an error (``StrictUndefined``), nothing
is escaped (``autoescape=False``: these are config files, not HTML), and every value a
template prints goes through :func:`refuse_unsafe`, which lets through only whole
numbers and strings of ``A-Z a-z 0-9 _ . / : @ + -`` (a leading ``*.`` allowed, for
wildcard names, ``*:`` for Apache's any address, and a bracketed IPv6 address). A value with a newline, ``;``, a brace, a quote, ``$``, a backslash, a
space, ``#``, ``~``… raises :class:`TemplateValueError`: a value is refused, never
escaped or changed. Lists are printed by looping over them in the template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jinja2

from cockpit.config import config_dir

__all__ = [
    "BUILTIN_TEMPLATES",
    "SAFE_VALUE",
    "TemplateError",
    "TemplateValueError",
    "override_dir",
    "refuse_unsafe",
    "render_template",
    "template_environment",
]

BUILTIN_TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"

#: What a printed string may be: no whitespace, quotes, ';', braces, '$', '\\', '#', '~',
#: '%', ',', '=', nothing outside ASCII; '*' only as a leading '*.' (a wildcard name) or
#: '*:' (Apache's any-address), brackets only around an IPv6 address (with a port).
SAFE_VALUE: Final = re.compile(r"(?:\*[.:])?[A-Za-z0-9_./:@+-]*|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


class TemplateError(Exception):
    """A template could not be rendered (syntax error, undefined name, refused value)."""


class TemplateValueError(TemplateError, ValueError):
    """A value failed the whitelist of printable template values."""


def refuse_unsafe(value: object) -> object:
    """The ``finalize`` hook: return ``value`` unchanged if it is safe, else raise."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises its own clear error here
    if isinstance(value, bool):
        raise TemplateValueError(
            f"refusing to print the boolean {value!r} (use {{% if %}} in the template)"
        )
    if isinstance(value, int):
        return value
    if isinstance(value, str) and SAFE_VALUE.fullmatch(value):
        return value
    shown = repr(value)[:80].encode("unicode_escape").decode("ascii")
    raise TemplateValueError(
        f"refusing to print {shown}: a template value must be a whole number or a string of "
        "A-Z, a-z, 0-9 and '_./:@+-' (no whitespace, quotes, ';', braces, '$', '\\', '#')"
    )


def override_dir() -> Path:
    """Where a user's template overrides live: ``config_dir()/templates``."""
    return config_dir() / "templates"


def template_environment(user_dir: Path | None = None) -> jinja2.Environment:
    """The environment: the user's override dir first, then the built-in templates."""
    overrides = user_dir if user_dir is not None else override_dir()
    # Config files, not HTML: nothing is escaped; finalize refuses what is unsafe.
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(overrides)),
                jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)),
            ]
        ),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701
        finalize=refuse_unsafe,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def template_origin(env: jinja2.Environment, name: str) -> str:
    """Where ``name`` is loaded from (the override file, or the built-in one)."""
    try:
        source = env.loader.get_source(env, name) if env.loader else None
    except jinja2.TemplateNotFound:
        return "(not found)"
    return source[1] if source and source[1] else name


def render_template(
    name: str, context: Mapping[str, Any], *, env: jinja2.Environment | None = None
) -> str:
    """Render template ``name``; any failure is a :class:`TemplateError` naming it."""
    environment = env if env is not None else template_environment()
    try:
        template = environment.get_template(name)
        return template.render(**context)
    except TemplateValueError as exc:
        raise TemplateValueError(f"{template_origin(environment, name)}: {exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound:
        raise TemplateError(
            f"template {name} not found in {override_dir()} or the built-ins"
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{template_origin(environment, name)}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template_origin(environment, name)}: {exc}") from None
