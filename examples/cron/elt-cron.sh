#!/usr/bin/env bash
# Runs `elt sync` for one connection from cron: never two at once, JSON log lines appended to
# one log file per connection, the last --json summary kept beside it.
#
# Usage: elt-cron.sh CONNECTION [more `elt sync` options, such as --streams orders]
#
# Environment (all optional):
#   ELT              the elt binary (default: elt on PATH)
#   ELT_PROJECT_DIR  the directory holding elt.toml (default: the current directory)
#   ELT_LOG_DIR      where logs, summaries and lock files go (default: $ELT_PROJECT_DIR/logs)
#
# Files, per connection NAME (characters other than letters, digits, '.', '_' and '-'
# become '_'):
#   NAME.log         elt's JSON log lines (--log-format json) and this wrapper's own lines
#   NAME.last.json   the --json summary of the last run that started
#   NAME.lock        held with flock(1) while a run is under way
#
# Exit codes: elt's own (0 ok, 1 failed, 2 config or usage, 3 lock held, 4 partial), and
# 3 without starting elt when the previous run of the same connection still holds NAME.lock.
# Nothing is printed on success or on a skipped run, so cron mails only failures.
set -euo pipefail

if [[ $# -lt 1 || -z $1 ]]; then
  echo "usage: elt-cron.sh CONNECTION [elt sync options]" >&2
  exit 2
fi
connection=$1
shift
elt=${ELT:-elt}
project_dir=${ELT_PROJECT_DIR:-$PWD}
log_dir=${ELT_LOG_DIR:-$project_dir/logs}
file=${connection//[^A-Za-z0-9_.-]/_}
log=$log_dir/$file.log
mkdir -p "$log_dir"

# One JSON line in the same shape as elt's own log lines.
log_line() { # LEVEL MESSAGE
  local name=${connection//\\/\\\\} message=${2//\\/\\\\}
  name=${name//\"/\\\"}
  message=${message//\"/\\\"}
  printf '{"timestamp":"%s","level":"%s","target":"elt-cron","connection":"%s","message":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$name" "$message" >>"$log"
}

exec 9>"$log_dir/$file.lock"
if ! flock --nonblock 9; then
  log_line warn "skipped: the previous run of this connection is still under way"
  exit 3
fi

cd "$project_dir"
summary=$log_dir/$file.last.json
status=0
"$elt" sync --connection "$connection" --json --log-format json "$@" \
  >"$summary.tmp" 2>>"$log" || status=$?
mv -f "$summary.tmp" "$summary"
log_line info "elt exited with $status"
if [[ $status -ne 0 ]]; then
  echo "elt-cron: $connection: elt sync exited with $status; see $log and $summary" >&2
fi
exit "$status"
