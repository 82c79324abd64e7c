#!/usr/bin/env bash
# Build WhisperDesk's frozen app (PyInstaller, one folder) and its Debian/Ubuntu package from a checkout:
#
#     packaging/build-linux.sh            ->  dist/whisperdesk_<version>_<arch>.deb
#
# Needs python3 (3.10+, built with a shared libpython, as Debian's and pyenv's are), dpkg-deb and the network
# to PyPI only (everything else is in the checkout). Everything it makes lives under build/linux/ (a build
# virtual environment, PyInstaller's work folder, the frozen app, the package tree) and dist/.
# Settings: PYTHON (interpreter for the build venv), WHISPERDESK_BUILD_DIR, WHISPERDESK_DIST_DIR,
# DEB_COMPRESSION (dpkg-deb's -Z/-z, default "zstd 3": on two busy cores 8.6 s for 294 MiB where gzip -1 took
# 37.3 s for 322 MiB; every dpkg that can run the app reads it: the bundle needs glibc 2.35, i.e. Debian 12 or
# Ubuntu 22.04 and newer, whose dpkg reads zstd; "gzip 1" for an older dpkg),
# NICE (prefix for the heavy steps, default "nice -n 19").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${WHISPERDESK_BUILD_DIR:-$ROOT/build/linux}
DIST=${WHISPERDESK_DIST_DIR:-$ROOT/dist}
PYTHON=${PYTHON:-python3}
NICE=${NICE-nice -n 19}
read -r COMPRESSOR LEVEL <<<"${DEB_COMPRESSION:-zstd 3}"
VENV=$BUILD/venv
FROZEN=$BUILD/dist/whisperdesk
say() { printf 'build-linux: %s\n' "$*" >&2; }
step_start=$SECONDS
took() { say "$1 took $((SECONDS - step_start)) s"; step_start=$SECONDS; }

command -v dpkg-deb >/dev/null || { say "dpkg-deb is missing (apt-get install dpkg)"; exit 1; }
mkdir -p "$BUILD" "$DIST"

# 1. A build virtual environment with WhisperDesk installed as a user gets it (not editable) and PyInstaller.
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
$NICE "$VENV/bin/pip" install -q -r "$ROOT/packaging/requirements-build.txt" "$ROOT"
# The same version number with changed sources: replace the installed copy with this checkout's.
$NICE "$VENV/bin/pip" install -q --no-deps --force-reinstall "$ROOT"
took "build environment"

# 2. The frozen app.
$NICE "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath "$BUILD/dist" --workpath "$BUILD/work" "$ROOT/packaging/whisperdesk.spec"
VERSION=$("$FROZEN/whisperdesk" --version | awk '{print $2}')
[ -n "$VERSION" ] || { say "the frozen app did not report its version"; exit 1; }
took "PyInstaller (whisperdesk $VERSION)"

# 3. The package tree: /opt/whisperdesk, /usr/bin/whisperdesk, menu entry, icons, copyright.
ARCH=$(dpkg --print-architecture)
NAME=whisperdesk_${VERSION}_${ARCH}
TREE=$BUILD/deb/$NAME
rm -rf "$TREE"
mkdir -p "$TREE/DEBIAN" "$TREE/opt" "$TREE/usr/bin" "$TREE/usr/share/applications" \
    "$TREE/usr/share/icons/hicolor/scalable/apps" "$TREE/usr/share/icons/hicolor/256x256/apps" \
    "$TREE/usr/share/doc/whisperdesk"
cp -al "$FROZEN" "$TREE/opt/whisperdesk" 2>/dev/null || cp -a "$FROZEN" "$TREE/opt/whisperdesk"
ln -s /opt/whisperdesk/whisperdesk "$TREE/usr/bin/whisperdesk"
# The menu entry and icons as the frozen folder carries them.
install -m 644 "$FROZEN/_internal/share/applications/whisperdesk.desktop" "$TREE/usr/share/applications/"
install -m 644 "$FROZEN/_internal/whisperdesk/resources/whisperdesk.svg" "$TREE/usr/share/icons/hicolor/scalable/apps/"
install -m 644 "$FROZEN/_internal/whisperdesk/resources/whisperdesk.png" "$TREE/usr/share/icons/hicolor/256x256/apps/"
{
    echo "WhisperDesk $VERSION, frozen with PyInstaller: the app is MIT-licensed; the libraries under"
    echo "/opt/whisperdesk/_internal keep their own licences (their *.dist-info folders carry them)."
    echo
    cat "$ROOT/whisperdesk/resources/NOTICE-speaker-model.txt"
} >"$TREE/usr/share/doc/whisperdesk/copyright"
chmod -R u+rwX,go+rX,go-w "$TREE"

# Depends: the system packages that own the libraries the bundle links to (checked with ldd; fails when a
# library is not installed here, since its package could not be named).
DEPENDS=$("$VENV/bin/python" "$ROOT/packaging/linux_depends.py" "$TREE/opt/whisperdesk")
SIZE_KB=$(du -sk --exclude=DEBIAN "$TREE" | awk '{print $1}')
cat >"$TREE/DEBIAN/control" <<EOF
Package: whisperdesk
Version: $VERSION
Architecture: $ARCH
Maintainer: WhisperDesk developers <whisperdesk@invalid>
Installed-Size: $SIZE_KB
Depends: $DEPENDS
Section: sound
Priority: optional
Description: transcribe recordings on your own GPU or CPU
 WhisperDesk turns meeting recordings, interviews and lectures into TXT, SRT,
 VTT and JSON transcripts with one shared faster-whisper model, a queue that
 survives crashes and watched folders. It works offline with its built-in
 multilingual model; no Python installation is needed.
EOF
took "package tree and Depends"

# 4. The .deb. No maintainer scripts: dpkg's triggers refresh the menu and icon caches, and nothing touches
# the users' settings, queue, models or transcripts (in their home folders) on install or removal.
rm -f "$DIST"/whisperdesk_*_"$ARCH".deb
$NICE dpkg-deb --root-owner-group -Z"$COMPRESSOR" -z"$LEVEL" --build "$TREE" "$DIST/$NAME.deb" >/dev/null
took "dpkg-deb ($COMPRESSOR -$LEVEL)"
say "frozen app: $(du -sh "$FROZEN" | cut -f1) in $FROZEN"
say "package: $(du -h "$DIST/$NAME.deb" | cut -f1) $DIST/$NAME.deb"
echo "$DIST/$NAME.deb"
