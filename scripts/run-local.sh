#!/usr/bin/env bash
# Runs the whole platform on one machine with the embedded defaults: the API on
# 127.0.0.1:8080 and one worker (a separate process), SQLite at ./data/warble.db and uploads
# under ./data/blobs. Ctrl-C stops both. Every WARBLE_* variable of the README applies, and:
#
#   WARBLE_DATA_DIR  where the database, the uploads, the admin key and the logs live
#                    (default ./data in the repository)
#   WARBLE_BIN_DIR   run the `api` and `worker` binaries found there instead of building
#                    target/release first (the tests point it at their debug build)
#
# The API and the worker live and die together: when either ends, or the script ends for any
# reason (Ctrl-C, SIGTERM, SIGHUP, an error of its own), the other is stopped, and the script
# says which one ended, with its exit status and its last log lines. Each one's output is
# shown prefixed with its name and kept in $WARBLE_DATA_DIR/logs/{api,worker}.log. Only a
# SIGKILL of the script itself cannot be passed on: stop it with Ctrl-C or `kill` (SIGTERM).
#
# Needs bash 5.1 or newer (macOS: `brew install bash`).
set -euo pipefail

if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
    echo "run-local: needs bash 5.1 or newer, this is $BASH_VERSION (macOS: brew install bash)" >&2
    exit 1
fi

# Paths given relative to where the script was started from stay so after the `cd`.
absolute() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
data=$(absolute "${WARBLE_DATA_DIR:-$(dirname "$0")/../data}")
bin=${WARBLE_BIN_DIR:+$(absolute "$WARBLE_BIN_DIR")}
cd "$(dirname "$0")/.."

say() { echo "run-local: $*" >&2; }

if [ -z "$bin" ]; then
    cargo build --release --locked -p warble-api -p warble-worker
    bin=target/release
fi
for program in api worker; do
    if [ ! -x "$bin/$program" ]; then
        say "$bin/$program is missing (WARBLE_BIN_DIR=${WARBLE_BIN_DIR:-})"
        exit 1
    fi
done

mkdir -p "$data/logs"
export WARBLE_DATABASE_URL="${WARBLE_DATABASE_URL:-sqlite://$data/warble.db}"
export WARBLE_STORAGE_URL="${WARBLE_STORAGE_URL:-file://$data/blobs}"
export WARBLE_LISTEN="${WARBLE_LISTEN:-127.0.0.1:8080}"

# The address to reach the API at: a wildcard address means this machine.
port=${WARBLE_LISTEN##*:}
host=${WARBLE_LISTEN%:*}
host=${host#[}
host=${host%]}
case $host in
    0.0.0.0 | '') host=127.0.0.1 ;;
    ::) host=::1 ;;
esac
listening() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }
port_hint() {
    say "something already listens on port $port (WARBLE_LISTEN=$WARBLE_LISTEN): an earlier"
    say "run-local.sh, or another server. See which with \`ss -ltnp 'sport = :$port'\` (or"
    say "\`lsof -i :$port\`); stop it, or choose another address with WARBLE_LISTEN=127.0.0.1:<port>."
}
if listening; then
    port_hint
    exit 1
fi

# The first admin key, kept in $data/admin.key (readable by you only) unless one is given.
if [ -z "${WARBLE_ADMIN_KEY:-}" ]; then
    if [ ! -s "$data/admin.key" ]; then
        (umask 077 && printf 'wbl_%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >"$data/admin.key")
    fi
    WARBLE_ADMIN_KEY="$(cat "$data/admin.key")"
    export WARBLE_ADMIN_KEY
    say "admin key: $data/admin.key (export WARBLE_KEY=\$(cat $data/admin.key))"
fi
"$bin/api" migrate

# The pids of the two processes and of the copiers of their output, by name.
declare -A pid=() logger=()

# Stops what is running of the two, waits for them (the worker first finishes its running
# job, up to WARBLE_SHUTDOWN_TIMEOUT_SECS, 30 s by default, and is killed 10 s after that);
# a second Ctrl-C or SIGTERM kills them at once.
# shellcheck disable=SC2317 # it runs from the EXIT trap
stop_all() {
    local running=() name p
    for name in api worker; do
        p=${pid[$name]:-}
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            running+=("$p")
        fi
    done
    if [ ${#running[@]} -gt 0 ]; then
        kill -TERM "${running[@]}" 2>/dev/null || true
        trap 'say "killing them"; kill -KILL ${running[*]} 2>/dev/null' INT TERM HUP
        local deadline=$((SECONDS + ${WARBLE_SHUTDOWN_TIMEOUT_SECS:-30} + 10))
        for p in "${running[@]}"; do
            while kill -0 "$p" 2>/dev/null; do
                if [ "$SECONDS" -ge "$deadline" ]; then
                    say "pid $p is still running; killing it"
                    kill -KILL "$p" 2>/dev/null || true
                fi
                sleep 0.1
            done
        done
    fi
    # Their last lines are shown before the script's own.
    for name in api worker; do
        p=${logger[$name]:-}
        if [ -n "$p" ]; then
            wait "$p" 2>/dev/null || true
        fi
    done
}
# shellcheck disable=SC2317 # the EXIT trap
on_exit() {
    local status=$?
    trap '' INT TERM HUP
    stop_all
    exit "$status"
}
trap on_exit EXIT
trap 'say "stopping (SIGINT)"; exit 130' INT
trap 'say "stopping (SIGTERM)"; exit 143' TERM
trap 'say "stopping (SIGHUP)"; exit 129' HUP

# Starts a program whose output goes to the terminal, each line prefixed with its name, and
# to $data/logs/NAME.log. The copier ignores Ctrl-C and SIGTERM, so that the program's last
# words, said while it stops, still show; it ends with the program's output.
start() {
    local name=$1 out
    shift
    exec {out}> >(
        trap '' INT TERM HUP
        exec 3>"$data/logs/$name.log"
        while IFS= read -r line || [ -n "$line" ]; do
            printf '%s\n' "$line" >&3
            printf '%-6s| %s\n' "$name" "$line"
        done
    )
    logger[$name]=$!
    "$@" >&"$out" 2>&1 &
    pid[$name]=$!
    exec {out}>&-
}

# Why a process ended, from its exit status.
describe() {
    if [ "$1" -gt 128 ] && kill -l "$(($1 - 128))" >/dev/null 2>&1; then
        echo "killed by SIG$(kill -l "$(($1 - 128))"), exit status $1"
    else
        echo "exit status $1"
    fi
}

# Says which process ended, how, and where to look; stops the other; exits with its status.
ended() {
    local name=$1 status=$2 other=api log="$data/logs/$1.log"
    [ "$name" = api ] && other=worker
    # Its output is complete once its copier is done.
    wait "${logger[$name]}" 2>/dev/null || true
    say "the $name stopped ($(describe "$status")); stopping the $other too."
    if [ -s "$log" ]; then
        say "last lines of the $name's log ($log):"
        tail -n 15 "$log" | sed 's/^/    /' >&2
    fi
    # A process killed by a signal was stopped from outside: no advice on its settings.
    if [ "$status" -le 128 ]; then
        case $name in
            api)
                if grep -qi 'address already in use\|address in use' "$log" 2>/dev/null; then
                    port_hint
                else
                    say "check WARBLE_DATABASE_URL ($WARBLE_DATABASE_URL), WARBLE_STORAGE_URL" \
                        "($WARBLE_STORAGE_URL) and the other settings its log names."
                fi
                ;;
            worker)
                say "the worker stops when it cannot load the model (WARBLE_MODEL:" \
                    "${WARBLE_MODEL:-nvidia/parakeet-tdt-0.6b-v2 from the Hugging Face Hub, which needs" \
                    "network access on first use; it is cached under HF_HOME}), cannot use" \
                    "WARBLE_DEVICE (${WARBLE_DEVICE:-cpu}) or cannot reach the database or the storage."
                ;;
        esac
    fi
    [ "$status" -eq 0 ] && status=1
    exit "$status"
}

start api "$bin/api"
api=${pid[api]}
# The worker starts once the API listens, so that an API that cannot start (its port taken)
# is reported as such and no worker is left waiting for it.
for ((tries = 0; ; tries++)); do
    if ! kill -0 "$api" 2>/dev/null; then
        status=0
        wait "$api" || status=$?
        ended api "$status"
    fi
    if listening; then
        break
    fi
    if [ "$tries" -ge 600 ]; then
        say "the api does not listen on $WARBLE_LISTEN after 60 s; stopping it."
        exit 1
    fi
    sleep 0.1
done
start worker "$bin/worker" run
worker=${pid[worker]}
say "running: the API on http://$host:$port (pid $api) and the worker (pid $worker);" \
    "Ctrl-C stops both."

status=0
first=
wait -n -p first "$api" "$worker" || status=$?
if [ "$first" = "$api" ]; then
    ended api "$status"
else
    ended worker "$status"
fi
