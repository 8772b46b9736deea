#!/usr/bin/env bash
# Build (once) a Debian trixie chroot with GIMP 3 for tinct's end-to-end GIMP test,
# and (re)mount /proc and /dev inside it.
#
#   scripts/gimp_chroot.sh            build if needed, then mount; prints the chroot path
#   scripts/gimp_chroot.sh --mount    only mount (fails if not built)
#   scripts/gimp_chroot.sh --umount   unmount /proc and /dev
#
# The chroot lives OUTSIDE the repository:
#   ${TINCT_GIMP_CHROOT:-/var/cache/tinct/gimp-trixie}
# A stamp file (<chroot>/.tinct-stamp) makes re-runs instant. Needs root, debootstrap
# (installed with apt-get when missing) and access to deb.debian.org.
set -euo pipefail

CHROOT="${TINCT_GIMP_CHROOT:-/var/cache/tinct/gimp-trixie}"
MIRROR="${TINCT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="gimp,python3-gi,gir1.2-gimp-3.0,gir1.2-gegl-0.4,python3-numpy"
STAMP="$CHROOT/.tinct-stamp"
STAMP_VERSION="1 $PACKAGES"

log() { echo "gimp_chroot: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root (debootstrap and chroot need it)"
    exit 77
  fi
}

do_mount() {
  [ -d "$CHROOT/proc" ] || { log "no chroot at $CHROOT"; exit 1; }
  mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
  mountpoint -q "$CHROOT/dev" || mount --bind /dev "$CHROOT/dev"
}

do_umount() {
  mountpoint -q "$CHROOT/dev" && umount -l "$CHROOT/dev" || true
  mountpoint -q "$CHROOT/proc" && umount -l "$CHROOT/proc" || true
}

built() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_VERSION" ] \
    && [ -x "$CHROOT/usr/bin/gimp-console-3.0" ]
}

build() {
  need_root
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap on the host"
    apt-get install -y debootstrap >&2 || { apt-get update >&2 && apt-get install -y debootstrap >&2; }
  fi
  mkdir -p "$(dirname "$CHROOT")"
  local t0=$SECONDS
  if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
    log "debootstrap trixie into $CHROOT (about 10 minutes)"
    # debootstrap ends with a configure failure (virtual packages); apt-get -f fixes it.
    debootstrap --variant=minbase --include="$PACKAGES" trixie "$CHROOT" "$MIRROR" >&2 \
      || log "debootstrap reported a failure (expected); completing with apt-get -f install"
  fi
  do_mount
  cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
  echo "deb $MIRROR trixie main" > "$CHROOT/etc/apt/sources.list"
  chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get update >&2
  chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get -f install -y >&2
  chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends ${PACKAGES//,/ } >&2
  chroot "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin gimp-console-3.0 --version >&2
  chroot "$CHROOT" apt-get clean >&2 || true
  echo "$STAMP_VERSION" > "$STAMP"
  log "chroot ready in $((SECONDS - t0)) s"
}

case "${1:-}" in
  --mount) need_root; do_mount ;;
  --umount) need_root; do_umount; exit 0 ;;
  --path) echo "$CHROOT"; exit 0 ;;
  ""|--build)
    need_root
    if built; then do_mount; else build; fi ;;
  *) log "unknown option $1"; exit 2 ;;
esac
echo "$CHROOT"
