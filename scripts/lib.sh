# Helpers for scripts/demo.sh and scripts/test.sh (sourced, not run): numbered stages that say
# what they do, roughly how long they take and how long they took, and the one build of the
# guest components that the tests' build script (crates/wasock-guests/build.rs) also runs.

# The cargo target directory (CARGO_TARGET_DIR, a config's build.target-dir, or target/).
target_dir() {
    cargo metadata --format-version 1 --no-deps 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

stage_total=0
stage_number=0
stage_name=""
stage_started=0
script_started=$(date +%s)
stage_times=()

# `stages N`: how many stages the script has.
stages() {
    stage_total=$1
}

# `minutes SECONDS` as `1m 05s` or `42s`.
minutes() {
    local s=$1
    if [ "$s" -ge 60 ]; then
        printf '%dm %02ds' $((s / 60)) $((s % 60))
    else
        printf '%ds' "$s"
    fi
}

# Ends the stage under way, printing how long it took.
stage_done() {
    [ -n "$stage_name" ] || return 0
    local took=$(($(date +%s) - stage_started))
    printf '    %s: done in %s\n' "$stage_name" "$(minutes "$took")"
    stage_times+=("$stage_name $(minutes "$took")")
    stage_name=""
}

# `stage NAME WHAT [ESTIMATE]`: ends the previous stage and announces the next one: its number,
# what it does and, for a long one, roughly how long it takes.
stage() {
    stage_done
    stage_number=$((stage_number + 1))
    stage_name=$1
    stage_started=$(date +%s)
    echo
    printf '==> [%d/%d] %s: %s\n' "$stage_number" "$stage_total" "$1" "$2"
    if [ -n "${3:-}" ]; then
        printf '    (%s)\n' "$3"
    fi
}

# Call from an EXIT trap: names the stage that failed, or lists every stage's time.
stages_report() {
    local status=$1
    if [ "$status" -ne 0 ] && [ -n "$stage_name" ]; then
        echo
        printf '==> FAILED in stage [%d/%d] %s (exit code %d, after %s)\n' \
            "$stage_number" "$stage_total" "$stage_name" "$status" \
            "$(minutes $(($(date +%s) - stage_started)))"
    elif [ "$status" -eq 0 ]; then
        stage_done
        local list
        list=$(printf '%s, ' "${stage_times[@]}")
        printf '==> all %d stages passed in %s: %s\n' "$stage_total" \
            "$(minutes $(($(date +%s) - script_started)))" "${list%, }"
    fi
}

# Whether the debug build of wasock is already there (for the estimates).
built_before() {
    [ -x "$(target_dir)/debug/wasock" ]
}

# `build_guests CARGO_ARGS...`: builds guest components from guests/ for wasm32-wasip2 exactly
# as crates/wasock-guests/build.rs does (same profile, target directory and environment), so
# that neither build repeats the other's work.
build_guests() {
    local target scrub=() var
    target=$(target_dir)
    for var in $(scrubbed_env); do
        scrub+=(-u "$var")
    done
    (cd guests && env "${scrub[@]}" cargo build --release --target wasm32-wasip2 \
        --manifest-path Cargo.toml --target-dir "${WASOCK_GUESTS_TARGET_DIR:-$target/wasm-guests}" "$@")
}

# The variables of this environment that a guest build must not see: the list and prefixes of
# crates/wasock-support/src/lib.rs (SCRUBBED_ENV, SCRUBBED_ENV_PREFIXES), which the tests'
# build script and the benchmark harness use.
scrubbed_env() {
    local src=crates/wasock-support/src/lib.rs prefixes
    sed -n '/^pub const SCRUBBED_ENV: /,/^];/s/^ *"\([A-Z_]*\)",$/\1/p' "$src"
    prefixes=$(sed -n '/^pub const SCRUBBED_ENV_PREFIXES: /p' "$src" | grep -o '"[A-Z_]*"' |
        tr -d '"' | paste -sd'|')
    compgen -e | grep -E "^($prefixes)" || true
}

# The guest packages the tests use: the PACKAGES list of crates/wasock-guests/build.rs, as
# `-p NAME` arguments for build_guests.
test_guest_packages() {
    local name
    # The list on one line or, as rustfmt lays out a long one, over several.
    for name in $(awk '/^const PACKAGES: &\[&str\] = &\[/ { on = 1 } on { print } on && /\];/ { exit }' \
        crates/wasock-guests/build.rs | sed 's/^const PACKAGES: &\[&str\] = &\[//; s/\];.*$//' | tr -d '",'); do
        printf -- '-p\n%s\n' "$name"
    done
}

# `public_api DOC_DIR`: the public API rustdoc shows for the crate documented in DOC_DIR
# (target/doc/CRATE): each item as `KIND CRATE::PATH`, then, indented, its fields, variants,
# inherent methods and trait implementations (not their methods); auto-trait and blanket
# implementations are left out.
public_api() {
    local dir=$1 crate page
    crate=$(basename "$dir")
    grep -o '<li><a href="[^"]*\.html">' "$dir/all.html" |
        sed 's/.*href="\([^"]*\)\.html">/\1/' | LC_ALL=C sort | while read -r page; do
        echo "$page" | sed -E "s#^(([a-z_]+/)*)([a-z]+)\.([A-Za-z_0-9]+)\$#\3 $crate::\1\4#; s#/#::#g"
        tr -d '\n' <"$dir/$page.html" | sed 's/id="synthetic-implementations".*//' |
            { grep -o 'id="\(structfield\|variant\|method\|tymethod\|associatedtype\|associatedconstant\|impl\)[.-][^"]*"' || true; } |
            sed -E 's/^id="([a-z]+)[.-](.*)"$/    \1 \2/; s/%3C/</g; s/%3E/>/g; s/%20/ /g' |
            awk '/^    impl / { trait = index($0, "-for-") > 0 }
                 !(trait && /^    method /)'
    done
}
