# Shared by the scripts: where things are, and getting PostgreSQL, Redis and RabbitMQ running.
# Sourced, not run.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# Builds live outside the clone so a fresh clone (CI) reuses warm artefacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bms-target}"
# The committed .sqlx query data lets the build check SQL without a database.
export SQLX_OFFLINE=true

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    listening "$port" && return 0
    sleep 1
  done
  echo "$name did not start listening on port $port" >&2
  return 1
}

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

apt_install() {
  if [ -z "${BMS_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    BMS_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

start_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "installing PostgreSQL"
    apt_install postgresql
    local fresh=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for_port 5432 PostgreSQL
  if [ -n "${fresh:-}" ]; then
    # A fresh Debian server asks for a password over TCP: give postgres the one .env uses.
    as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || { say "installing Redis"; apt_install redis-server; }
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for_port 6379 Redis
}

start_rabbitmq() {
  command -v rabbitmq-server >/dev/null 2>&1 || { say "installing RabbitMQ"; apt_install rabbitmq-server; }
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for_port 5672 RabbitMQ
  # The port opens before the broker accepts clients.
  as_root rabbitmqctl await_startup >/dev/null 2>&1 || true
}

# Reservation jobs are routed by scope through a consistent-hash exchange, which RabbitMQ ships
# as a plugin, disabled. Enabling takes effect at once on a running broker; the file check
# saves the CLI's few seconds when it is already on.
enable_rabbitmq_plugins() {
  command -v rabbitmq-plugins >/dev/null 2>&1 || return 0
  grep -qs rabbitmq_consistent_hash_exchange /etc/rabbitmq/enabled_plugins && return 0
  say "enabling RabbitMQ's consistent-hash exchange"
  as_root rabbitmq-plugins --quiet enable rabbitmq_consistent_hash_exchange >/dev/null
}

# Makes sure PostgreSQL, Redis and RabbitMQ answer on their standard local ports, starting
# (and if need be installing) whichever does not.
ensure_services() {
  if listening 5432 && listening 6379 && listening 5672; then
    enable_rabbitmq_plugins
    return 0
  fi
  if docker_engine; then
    say "starting postgres, redis and rabbitmq with docker compose"
    docker compose up -d --wait postgres redis rabbitmq
    return 0
  fi
  listening 5432 || start_postgres
  listening 6379 || start_redis
  listening 5672 || start_rabbitmq
  enable_rabbitmq_plugins
}

# A virtualenv outside the clone with the Python packages the tests run
# (scripts/requirements-test.txt); exports BMS_PYTHON, its interpreter.
python_test_env() {
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/bms-python"
  command -v python3 >/dev/null 2>&1 || { say "installing Python"; apt_install python3; }
  if [ ! -x "$venv/bin/python" ]; then
    say "creating the test virtualenv in $venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$ROOT/scripts/requirements-test.txt"
  export BMS_PYTHON="$venv/bin/python"
}
