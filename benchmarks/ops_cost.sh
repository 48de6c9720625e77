#!/usr/bin/env bash
# Instructions per connection and per message (callgrind, user space), for
# checkouts given as NAME=PATH[:SETTINGS_JSON], e.g.
#   bash benchmarks/ops_cost.sh before=/work/main off=$PWD:'{"WS_METRICS": false}' on=$PWD:'{"WS_METRICS": true}'
# Each is run with two counts; the marginal cost is the difference over the counts'
# difference, so Django's start-up cancels out. Counts repeat within ~0.1%.
set -euo pipefail
python=${PYTHON:-/work/main/.venv/py313-dj61/bin/python}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() {  # checkout settings connections messages -> instructions
    local out="$work/cg.$RANDOM"
    (cd "$1" && PYTHONHASHSEED=0 PYTHONPATH="$1" DJANGO_WS_TEST_SETTINGS="$2" \
        valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$python" "$here/ops_cost.py" "$3" "$4" >/dev/null 2>&1)
    grep -m1 '^summary:' "$out" | awk '{print $2}'
}

for spec in "$@"; do
    name=${spec%%=*}
    rest=${spec#*=}
    checkout=${rest%%:*}
    settings=$([[ $rest == *:* ]] && echo "${rest#*:}" || echo '{}')
    c1=$(count "$checkout" "$settings" 20 0)
    c2=$(count "$checkout" "$settings" 120 0)
    m1=$(count "$checkout" "$settings" 1 100)
    m2=$(count "$checkout" "$settings" 1 600)
    python3 -c "print(f'$name: {($c2 - $c1) / 100:,.0f} instructions per connection, {($m2 - $m1) / 500:,.0f} per message (round trip)')"
done
