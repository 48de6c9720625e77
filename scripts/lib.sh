# shellcheck shell=bash
# Helpers shared by scripts/test.sh and scripts/example.sh; source it from the
# repository root.

# log MESSAGE...: print a progress line that stands out in CI logs.
log() {
    printf '\n==> %s\n' "$*"
}

# pick_python VERSION: print the path of a working Python VERSION (e.g. 3.10),
# preferring pyenv's build, else python3. A candidate must have venv and
# ensurepip, which Debian's python3 lacks without python3-venv.
pick_python() {
    local version=$1 candidate
    for candidate in /root/.pyenv/versions/"$version"*/bin/python \
        "python$version" python3; do
        if "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            # The real interpreter, not a pyenv shim that depends on the cwd.
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    echo "No Python with venv found (wanted $version, or python3)." >&2
    return 1
}

# ensure_venv DIR PYTHON PIP_ARG...: make DIR a virtualenv of PYTHON with
# PIP_ARGs installed. A stamp file records what was installed, so a second run
# with the same Python, arguments, pyproject.toml and checkout skips pip.
ensure_venv() {
    local dir=$1 python=$2
    shift 2
    local stamp="$dir/.django-ws-installed" want version
    version=$("$python" -c 'import sys; print(sys.version)')
    want="$version|$PWD|$*|$(sha256sum pyproject.toml)"
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]] &&
        "$dir/bin/python" -c '' >/dev/null 2>&1; then
        echo "Re-using $dir ($("$dir/bin/python" -V))."
        return 0
    fi
    # A venv of another Python (or a broken one) is rebuilt, not patched.
    if [[ $("$dir/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null) != "$version" ]]; then
        rm -rf "$dir"
        echo "Creating $dir with $python."
        "$python" -m venv "$dir"
    fi
    echo "Installing into $dir: $*"
    # pip's config on these machines lists index folders that may be missing:
    # drop its warnings about them, keep everything else.
    "$dir/bin/python" -m pip install --quiet --progress-bar off "$@" 2>&1 |
        { grep -v 'is ignored: it is neither a file nor a directory' || true; }
    echo "$want" >"$stamp"
}
