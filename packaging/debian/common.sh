# Shared by the husk package's maintainer scripts (packaging layout @LAYOUT@).
# Nothing here reaches the network, and nothing stops or restarts a sandbox.
PKG_VERSION="@VERSION@"
GUEST=/usr/share/husk/guest
# Asset versions of the previous package, hard-linked here by preinst so that
# dpkg's removal of the old package's files does not take what running
# sandboxes booted; postinst puts them back beside the new version.
KEEP="$GUEST/.kept"

# Where sandboxes live: `root` in the config file, else husk's default.
husk_root() {
  r=$(sed -n 's/^[[:space:]]*root[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' /etc/husk/config.toml 2>/dev/null | head -n 1)
  echo "${r:-/run/husk}"
}

restore_kept_assets() {
  [ -d "$KEEP" ] || return 0
  for dir in "$KEEP"/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    if [ -e "$GUEST/$name" ]; then rm -rf "$dir"; else mv "$dir" "$GUEST/$name"; fi
  done
  rmdir "$KEEP" 2>/dev/null || true
}
