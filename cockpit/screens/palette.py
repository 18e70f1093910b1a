"""ctrl+p: Textual's command palette, with Cockpit's providers.

- :class:`EntityProvider` jumps to a server (its detail), a platform or a client (their
  sites), or a site (its detail) by name. Servers, platforms and clients are read once
  when the palette opens; sites are searched in the store as you type (a substring of the
  domain, through :meth:`Cockpit.sites_page`), so 100,000 sites cost one small query.
- :class:`ActionProvider` runs what the ``:`` line and the keys run: open a view (the
  failed tasks, the on-call problems and the dashboard too), switch theme, show the keys,
  refresh, clear the marks, quit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.style import Style

from cockpit.core import SiteFilter
from cockpit.messages import Scope, ViewName
from cockpit.textsafe import sanitize

if TYPE_CHECKING:
    from cockpit.app import CockpitApp

__all__ = ["ActionProvider", "EntityProvider"]

#: Sites listed for one search.
SITE_HITS = 8


@dataclass(frozen=True, slots=True)
class _Entity:
    kind: str  # server, platform, client
    name: str
    help: str


class _CockpitProvider(Provider):
    @property
    def cockpit_app(self) -> CockpitApp:
        return cast("CockpitApp", self.app)


class EntityProvider(_CockpitProvider):
    """Servers, platforms, clients and sites by name."""

    def __init__(self, screen: Screen[Any], match_style: Style | None = None) -> None:
        super().__init__(screen, match_style)
        self._entities: list[_Entity] = []

    async def startup(self) -> None:
        cockpit = self.cockpit_app.cockpit
        servers = await cockpit.servers()
        envs = {s.name: s.environment for s in servers}
        self._entities = [
            _Entity("server", s.name, f"{s.environment} · {s.address} · {len(s.services)} services")
            for s in servers
        ]
        self._entities += [
            _Entity("platform", p.name, f"{p.type.value} on {p.server} ({envs.get(p.server, '?')})")
            for p in await cockpit.platforms()
        ]
        self._entities += [
            _Entity("client", c.name, c.contact or "client") for c in await cockpit.clients()
        ]

    def _open(self, entity: _Entity) -> None:
        app = self.cockpit_app
        if entity.kind == "server":
            app.open_view("platforms", scope=Scope("server", entity.name))
        elif entity.kind == "platform":
            app.open_view("sites", scope=Scope("platform", entity.name))
        elif entity.kind == "client":
            app.open_view("sites", scope=Scope("client", entity.name))

    def _open_site(self, domain: str) -> None:
        self.cockpit_app.open_view("site", key=domain)

    async def discover(self) -> Hits:
        for entity in self._entities:
            if entity.kind == "server":
                yield DiscoveryHit(
                    Text(f"server {sanitize(entity.name)}"),
                    partial(self._open, entity),
                    text=f"server {entity.name}",
                    help=sanitize(entity.help),
                )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entity in self._entities:
            label = f"{entity.kind} {entity.name}"
            score = matcher.match(label)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(sanitize(label)),
                    partial(self._open, entity),
                    text=label,
                    help=sanitize(entity.help),
                )
        needle = query.strip().removeprefix("site ").strip()
        if not needle or " " in needle:
            return
        page = await self.cockpit_app.cockpit.sites_page(SiteFilter(text=needle), limit=SITE_HITS)
        for site in page.sites:
            label = f"site {site.domain}"
            score = max(matcher.match(label), 0.5)
            more = f" · {page.total:,} sites match" if page.total > SITE_HITS else ""
            yield Hit(
                score,
                matcher.highlight(sanitize(label)),
                partial(self._open_site, site.domain),
                text=label,
                help=sanitize(f"{site.status.value} · {site.platform}{more}"),
            )


@dataclass(frozen=True, slots=True)
class _Action:
    name: str
    help: str
    run: Callable[[], object]


class ActionProvider(_CockpitProvider):
    """Views, themes, help, refresh, marks, quit."""

    def _actions(self) -> list[_Action]:
        app = self.cockpit_app
        screen = self.screen
        views: list[tuple[ViewName, str]] = [
            ("overview", "is anything wrong? problems first, then counts"),
            ("problems", "what the on-call status (cockpit status) finds, one per line"),
            ("servers", "every server"),
            ("platforms", "every platform"),
            ("sites", "every site"),
            ("clients", "every client"),
            ("backups", "every backup"),
            ("tasks", "every task, newest first; live"),
            ("schedules", "recurring tasks: pause, resume, remove"),
            ("audit", "who queued what"),
        ]
        actions = [
            _Action(f"view {name}", help, partial(app.open_view, name)) for name, help in views
        ]
        actions.append(
            _Action("view dashboard", "the statistics dashboard (8, :dash)", app.open_dashboard)
        )
        actions += [
            _Action(f"theme {name}", "switch theme", partial(app.switch_theme, name))
            for name in app.themes.cockpit_names
        ]
        actions.append(_Action("keys", "the keys of this view (?)", app.action_help))
        refresh = getattr(screen, "action_refresh", None)
        if callable(refresh):
            actions.append(_Action("refresh", "read this view again (ctrl+r)", refresh))
        actions.append(
            _Action(
                "view failed tasks",
                "the tasks that failed (:tasks failed)",
                partial(app.open_view, "tasks", scope=Scope("state", "failed")),
            )
        )
        table = app.marks_table(screen)
        if table is not None:
            actions.append(
                _Action("mark all", "mark every row of the list (*)", table.action_mark_all)
            )
            if table.marks:
                actions.append(
                    _Action(
                        "clear marks", f"{table.marks.count:,} marked (u)", table.action_clear_marks
                    )
                )
        actions.append(_Action("quit", "quit Cockpit (q)", app.exit))
        return actions

    async def discover(self) -> Hits:
        for action in self._actions():
            yield DiscoveryHit(action.name, action.run, help=action.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in self._actions():
            score = matcher.match(action.name)
            if score > 0:
                yield Hit(score, matcher.highlight(action.name), action.run, help=action.help)
