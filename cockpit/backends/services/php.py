"""php-fpm pools: one per site, its own Unix user and socket (the vhost's PHP upstream).

:func:`render_pool` renders ``php-fpm/pool.conf.j2`` (overridable like every template);
the vhost points at the pool's socket through :attr:`Vhost.php_socket
<cockpit.backends.services.http.Vhost>`. Installing pools (and the Unix users they run
as) belongs to the platform and site tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.backends.services.render import render_template
from cockpit.model import ValidationError, validate_name, validate_path, validate_unix_name

__all__ = ["PhpPool", "render_pool"]


@dataclass(frozen=True, slots=True)
class PhpPool:
    name: str
    user: str
    group: str
    listen: str  # the Unix socket path
    listen_owner: str  # the web server's user (it connects to the socket)
    listen_group: str
    docroot: str
    tmp_dir: str
    max_children: int = 5

    def __post_init__(self) -> None:
        validate_name(self.name, "pool.name")
        for value, field in (
            (self.user, "pool.user"),
            (self.group, "pool.group"),
            (self.listen_owner, "pool.listen_owner"),
            (self.listen_group, "pool.listen_group"),
        ):
            validate_unix_name(value, field)
        for value, field in (
            (self.listen, "pool.listen"),
            (self.docroot, "pool.docroot"),
            (self.tmp_dir, "pool.tmp_dir"),
        ):
            validate_path(value, field)
        if isinstance(self.max_children, bool) or not 1 <= self.max_children <= 1000:
            raise ValidationError("pool.max_children", "must be 1-1000", self.max_children)


def render_pool(pool: PhpPool) -> str:
    return render_template(
        "php-fpm/pool.conf.j2",
        {
            "pool": pool.name,
            "user": pool.user,
            "group": pool.group,
            "listen": pool.listen,
            "listen_owner": pool.listen_owner,
            "listen_group": pool.listen_group,
            "docroot": pool.docroot,
            "tmp_dir": pool.tmp_dir,
            "max_children": pool.max_children,
        },
    )
