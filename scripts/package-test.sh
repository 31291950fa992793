#!/usr/bin/env bash
# Installs the .deb on this machine as a new user would and checks it
# (issue 14's acceptance items 2 and 4), then removes every trace: the
# package, its data, its user. Run as root on a Debian/Ubuntu machine that
# does not have fortfolio installed. .ci/run calls it.
#
#   scripts/package-test.sh [DEB]     default: build one with scripts/release.sh
#                                     (FORTFOLIO_BIN=… packages that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "package-test: run as root" >&2; exit 2; }
if dpkg -s fortfolio >/dev/null 2>&1; then
  echo "package-test: fortfolio is already installed here; this test would remove it" >&2
  exit 2
fi
step() { echo "== package: $*"; }
fail() { echo "package-test FAILED: $*" >&2; exit 1; }
server_pid=
cleanup() {
  set +e
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ -d /run/systemd/system ]; then systemctl stop fortfolio.service 2>/dev/null; fi
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq fortfolio >/dev/null 2>&1
  getent passwd fortfolio >/dev/null && deluser --quiet --system fortfolio >/dev/null 2>&1
  getent group fortfolio >/dev/null && delgroup --quiet --system fortfolio >/dev/null 2>&1
  rm -rf /var/lib/fortfolio /var/log/fortfolio /etc/fortfolio
}
trap cleanup EXIT

deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(scripts/release.sh | grep '\.deb$')
fi
[ -f "$deb" ] || fail "no package at $deb"

step "apt-get install $(basename "$deb")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" >/dev/null 2>/tmp/fortfolio-apt.log \
  || { cat /tmp/fortfolio-apt.log >&2; fail "apt-get install"; }

step "user, directories and modes"
getent passwd fortfolio | grep -q ':/usr/sbin/nologin$' || fail "no system user fortfolio with nologin"
[ "$(id -u fortfolio)" -lt 1000 ] || fail "fortfolio is not a system user"
check_mode() {
  local got
  got=$(stat -c '%a %U:%G' "$1")
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
  echo "   $1 $got"
}
check_mode /var/lib/fortfolio "700 fortfolio:fortfolio"
check_mode /var/log/fortfolio "750 fortfolio:fortfolio"
check_mode /etc/fortfolio/config.toml "640 root:fortfolio"
check_mode /usr/bin/fortfolio "755 root:root"
grep -qx /etc/fortfolio/config.toml /var/lib/dpkg/info/fortfolio.conffiles || fail "config.toml is not a conffile"
grep -q '^data_dir = "/var/lib/fortfolio"$' /etc/fortfolio/config.toml || fail "config data_dir"
grep -q '^dir = "/var/log/fortfolio"$' /etc/fortfolio/config.toml || fail "config logging.dir"
fortfolio --version | grep -Eq '^fortfolio [0-9.]+ \(commit ([0-9a-f]+|unknown), built [0-9-]{10}\)$' \
  || fail "--version: $(fortfolio --version)"

step "completions and man pages"
bash -n /usr/share/bash-completion/completions/fortfolio || fail "bash completion does not parse"
[ -s /usr/share/zsh/vendor-completions/_fortfolio ] || fail "no zsh completion"
[ -s /usr/share/fish/vendor_completions.d/fortfolio.fish ] || fail "no fish completion"
pages=0
for page in /usr/share/man/man1/fortfolio*.1.gz; do
  name=$(basename "$page" .1.gz)
  MANWIDTH=80 man -l "$page" 2>/tmp/fortfolio-man.err | grep -q "^NAME" || fail "man -l $page renders no NAME section"
  [ ! -s /tmp/fortfolio-man.err ] || fail "man -l $page: $(cat /tmp/fortfolio-man.err)"
  pages=$((pages + 1))
done
[ "$pages" -ge 20 ] || fail "only $pages man pages"
man -w fortfolio-admin-user-create >/dev/null || fail "man cannot find fortfolio-admin-user-create"
echo "   $pages man pages render"

step "systemd-analyze"
systemd-analyze verify /usr/lib/systemd/system/fortfolio.service || fail "systemd-analyze verify"
systemd-analyze security --offline=true /usr/lib/systemd/system/fortfolio.service 2>/dev/null | tail -1

step "serve as user fortfolio"
if [ -d /run/systemd/system ]; then
  systemctl start fortfolio.service
else
  runuser -u fortfolio -- fortfolio serve --config /etc/fortfolio/config.toml >/tmp/fortfolio-serve.log 2>&1 &
  server_pid=$!
fi
for _ in $(seq 100); do fortfolio health >/dev/null 2>&1 && break; sleep 0.2; done
fortfolio health || { cat /tmp/fortfolio-serve.log >&2 2>/dev/null; fail "fortfolio health"; }
curl -sfk https://127.0.0.1:8443/api/v1/health | grep -q '"status":"ok"' || fail "GET /api/v1/health over HTTPS"
[ "$(stat -c '%a %U' /var/lib/fortfolio/admin.sock)" = "600 fortfolio" ] || fail "admin socket mode"

step "admin as root, through the admin socket"
out=$(fortfolio admin user create --email pkg-admin@example.com) || fail "admin user create"
echo "   $out" | head -1
fortfolio admin user list --json | grep -q '"pkg-admin@example.com"' || fail "admin user list"
# The event names the Unix user who ran the command (root), not the
# service user the command became to reach the socket.
events=$(fortfolio admin events --json --event register)
grep -Eq '"actor": "cli:[^"]*uid 0\)?"' <<<"$events" || fail "admin event does not name root: $events"
if runuser -u nobody -- fortfolio admin user list >/dev/null 2>&1; then
  fail "user nobody could run an admin command"
fi

step "admin as root with the server stopped: nothing left owned by root"
if [ -n "$server_pid" ]; then kill "$server_pid"; wait "$server_pid" || true; server_pid=; else systemctl stop fortfolio.service; fi
fortfolio health >/dev/null 2>&1 && fail "health says ok with the server stopped"
fortfolio admin user create --email pkg-offline@example.com >/dev/null || fail "offline admin user create"
stray=$(find /var/lib/fortfolio /var/log/fortfolio ! -user fortfolio)
[ -z "$stray" ] || fail "files not owned by fortfolio: $stray"

step "remove keeps the data, purge deletes it"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq fortfolio >/dev/null 2>&1
[ -f /var/lib/fortfolio/fortfolio.redb ] || fail "remove deleted the database"
[ ! -e /usr/bin/fortfolio ] || fail "remove left the binary"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq fortfolio >/dev/null 2>&1
[ ! -e /var/lib/fortfolio ] || fail "purge kept /var/lib/fortfolio"
[ ! -e /var/log/fortfolio ] || fail "purge kept /var/log/fortfolio"
[ ! -e /etc/fortfolio ] || fail "purge kept /etc/fortfolio"
echo "package-test: all checks passed"
