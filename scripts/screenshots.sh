#!/usr/bin/env bash
# Previews the example project and screenshots day 1's HTML in headless
# Chromium at 600px and 375px, then checks that neither width scrolls
# sideways. Exits non-zero on horizontal scrolling, for CI.
#
# Usage: scripts/screenshots.sh [OUT_DIR]   (PNGs go to OUT_DIR, default ./screenshots)
# Needs: chromium (Debian: apt-get install chromium), cargo.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-screenshots}" && cd "${1:-screenshots}" && pwd)"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin dripline
cp -r "$repo/dripline.toml" "$repo/subscribers.csv" "$repo/sequences" "$work/"
[ -d "$repo/templates" ] && cp -r "$repo/templates" "$work/"
(cd "$work" && "$repo/target/debug/dripline" preview --to preview --subscriber ada@example.com >/dev/null)
email="$(ls "$work"/preview/gut-immune/01-*.html)"

browse() {
    "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$(mktemp -d -p "$work")" "$@" 2>/dev/null
}

status=0
for width in 600 375; do
    browse --window-size="$width,1600" --screenshot="$out/day-1-${width}px.png" "file://$email" >/dev/null
    # Headless Chromium lays pages out at least 500px wide when dumping the
    # DOM, so the email is measured in an iframe of exactly $width px.
    probe="$(dirname "$email")/probe-$width.html"
    cat >"$probe" <<HTML
<!doctype html><html><body style="margin:0">
<iframe id="f" src="$(basename "$email")" style="width:${width}px;height:1600px;border:0"></iframe>
<script>
document.getElementById("f").onload = function () {
  var page = this.contentDocument.documentElement;
  document.title = "scroll:" + page.scrollWidth + ":" + this.contentWindow.innerWidth;
};
</script></body></html>
HTML
    title="$(browse --allow-file-access-from-files --window-size="$width,1600" --virtual-time-budget=3000 \
        --dump-dom "file://$probe" | grep -o 'scroll:[0-9]*:[0-9]*' | head -n 1 || true)"
    scroll="$(cut -d: -f2 <<<"$title")"
    viewport="$(cut -d: -f3 <<<"$title")"
    if [ -z "$scroll" ]; then
        echo "FAIL ${width}px: could not measure the page"
        status=1
    elif [ "$scroll" -gt "$viewport" ]; then
        echo "FAIL ${width}px: scrollWidth $scroll > viewport $viewport (scrolls sideways)"
        status=1
    else
        echo "PASS ${width}px: scrollWidth $scroll <= viewport $viewport; $out/day-1-${width}px.png"
    fi
done
exit "$status"
