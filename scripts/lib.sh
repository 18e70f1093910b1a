# shellcheck shell=bash
# Helpers for scripts/test (sourced, not run). Everything here is idempotent.

# The Debian packages the test suite needs. Add new ones here (apache2, bind9, restic, ...).
# shellcheck disable=SC2034 # used by scripts/test
TEST_PACKAGES=(
    ca-certificates procps util-linux curl
    sudo openssh-server openssh-client
    nginx php-fpm php-mysql php-pgsql
    # WordPress's codebase for the platform tests (/usr/share/wordpress; only read)
    wordpress wordpress-theme-twentytwentythree
    mariadb-server mariadb-client
    postgresql postgresql-client
    tmux tcsh rsync iptables iproute2 sqlite3 zstd restic
    apache2 openssl lego pebble
    mawk gawk
)

say() { printf '==> %s\n' "$*"; }
die() { printf 'scripts/test: error: %s\n' "$*" >&2; exit 1; }

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# install_packages PKG... : install those of PKG that are missing (apt-get update only then).
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run scripts/test as root"
    say "installing ${missing[*]}"
    # Keep the packages' init scripts from starting daemons (sshd on :22, nginx on :80, ...):
    # the tests start what they need themselves. Respect an existing policy-rc.d.
    local policy=/usr/sbin/policy-rc.d ours=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
    fi
    local rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        # wait for another apt/dpkg run instead of failing on its lock
        local lock=(-o DPkg::Lock::Timeout=600)
        apt-get "${lock[@]}" update -qq &&
            apt-get "${lock[@]}" install -y -qq --no-install-recommends \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                "${missing[@]}" </dev/null >/tmp/cockpit-test-apt.log 2>&1
    } || rc=$?
    [ -n "$ours" ] && rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        tail -n 30 /tmp/cockpit-test-apt.log >&2
        die "apt-get install failed (full log: /tmp/cockpit-test-apt.log)"
    fi
}

# wait_for SECONDS COMMAND... : poll COMMAND every 0.2 s until it succeeds.
wait_for() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

mariadb_tcp_ok() {
    mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -N -e 'SELECT 1' </dev/null
}

ensure_mariadb() {
    if ! mariadb-admin --protocol=socket -u root ping >/dev/null 2>&1; then
        say "starting MariaDB"
        install -d -o mysql -g mysql -m 755 /run/mysqld
        install -d -m 755 /var/log/mysql
        chown mysql:mysql /var/log/mysql 2>/dev/null || true
        start-stop-daemon --start --oknodo --background \
            --output /var/log/mysql/cockpit-test-start.log \
            --exec /usr/sbin/mariadbd -- --user=mysql
        if ! wait_for 60 mariadb-admin --protocol=socket -u root ping; then
            tail -n 20 /var/log/mysql/cockpit-test-start.log /var/log/mysql/error.log 2>/dev/null >&2
            die "MariaDB did not answer within 60 s"
        fi
    fi
    if ! mariadb_tcp_ok >/dev/null 2>&1; then
        # Fresh Debian: root@localhost authenticates by unix_socket only, which TCP cannot use.
        say "letting MariaDB root log in from 127.0.0.1 without a password"
        mariadb --protocol=socket -u root <<'SQL' || die "could not configure MariaDB root"
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
        mariadb_tcp_ok >/dev/null || die "root still cannot reach MariaDB on 127.0.0.1:3306"
    fi
}

pg_tcp_ok() {
    psql -X -h 127.0.0.1 -p 5432 -U root -d postgres -tAc 'SELECT 1' </dev/null
}

ensure_postgresql() {
    local line version cluster status
    line=$(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 { print $1, $2, $4; exit }')
    [ -n "$line" ] || line=$(pg_lsclusters -h 2>/dev/null | awk '{ print $1, $2, $4; exit }')
    [ -n "$line" ] || die "no PostgreSQL cluster found (pg_lsclusters is empty)"
    read -r version cluster status <<<"$line"
    if [ "$status" != online ]; then
        say "starting PostgreSQL $version/$cluster"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start ||
            die "pg_ctlcluster $version $cluster start failed (see /var/log/postgresql/)"
    fi
    if ! wait_for 60 pg_isready -q -h 127.0.0.1 -p 5432; then
        tail -n 20 "/var/log/postgresql/postgresql-$version-$cluster.log" >&2 2>/dev/null
        die "PostgreSQL did not answer on 127.0.0.1:5432 within 60 s"
    fi
    pg_tcp_ok >/dev/null 2>&1 && return 0
    say "letting root log in to PostgreSQL from 127.0.0.1"
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p 5432 -d postgres) <<'SQL' ||
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') THEN
    CREATE ROLE root LOGIN SUPERUSER;
  END IF;
END $$;
SQL
        die "could not create the PostgreSQL role root"
    pg_tcp_ok >/dev/null 2>&1 && return 0
    # Fresh Debian: host connections need a password (scram-sha-256). Trust root from 127.0.0.1 only.
    local hba
    hba=$(cd / && runuser -u postgres -- psql -X -p 5432 -d postgres -tAc 'SHOW hba_file')
    [ -f "$hba" ] || die "cannot find pg_hba.conf"
    if ! grep -q '^host all root 127.0.0.1/32 trust' "$hba"; then
        sed -i '1i # added by cockpit scripts/test: root may log in from 127.0.0.1 without a password\nhost all root 127.0.0.1/32 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" reload
    wait_for 10 pg_tcp_ok ||
        die "root still cannot reach PostgreSQL on 127.0.0.1:5432 (check $hba)"
}

# pick_python: print the path of a python >= 3.11 (python3.11 first, then python3).
pick_python() {
    local py
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}
