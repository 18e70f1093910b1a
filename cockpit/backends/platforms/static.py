"""``static``: a document root of files, no PHP, no database.

A new site's docroot is filled from the platform's codebase (hard links, so the
platform's files stay read-only for the site), or gets a placeholder ``index.html``
when the codebase is empty. The health answer is a 200 for ``/``.
"""

from __future__ import annotations

from typing import ClassVar, Final

from cockpit.backends.platforms.base import PlatformError, PlatformPlugin, SiteLayout
from cockpit.backends.services.base import run_step
from cockpit.backends.transport import Transport

__all__ = ["StaticPlatform"]

#: Args: docroot, index file name, other index names… (exit 0 when one exists, 1 not).
_HAS_INDEX: Final = r"""
dir=$1
shift
for name do [ -e "$dir/$name" ] && exit 0; done
exit 1
"""


class StaticPlatform(PlatformPlugin):
    type: ClassVar[str] = "static"
    description: ClassVar[str] = "static files served as they are"
    #: The placeholder page of a new site, and the names that make it unnecessary.
    index_template: ClassVar[str] = "platforms/static/index.html.j2"
    index_name: ClassVar[str] = "index.html"
    index_names: ClassVar[tuple[str, ...]] = ("index.html", "index.htm")

    async def prepare_site(self, transport: Transport, layout: SiteLayout, web_group: str) -> None:
        result = await run_step(
            transport,
            "look for an index page",
            _HAS_INDEX,
            [layout.docroot, *self.index_names],
            sudo=True,
        )
        if result.exit_code == 0:
            return
        if result.exit_code != 1:
            raise PlatformError(f"cannot look into {layout.docroot}", output=result.stderr)
        text = self.render(self.index_template, {"domain": layout.domain})
        await self.place_file(
            transport,
            f"{layout.docroot}/{self.index_name}",
            text,
            user=layout.unix_user,
            group=web_group,
            mode=0o640,
        )
