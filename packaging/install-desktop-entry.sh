#!/usr/bin/env sh
# Install WhisperDesk's menu entry and icon for the current user (Linux desktops following freedesktop.org).
# Run after `pip install .`; undo with: rm ~/.local/share/applications/whisperdesk.desktop \
#   ~/.local/share/icons/hicolor/scalable/apps/whisperdesk.svg
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
data=${XDG_DATA_HOME:-"$HOME/.local/share"}
if ! command -v whisperdesk >/dev/null 2>&1; then
    echo "install-desktop-entry: 'whisperdesk' is not on PATH; run 'pip install .' (in an active venv) first" >&2
    exit 1
fi
mkdir -p "$data/applications" "$data/icons/hicolor/scalable/apps"
sed "s|^Exec=whisperdesk |Exec=$(command -v whisperdesk) |" "$here/resources/whisperdesk.desktop" \
    > "$data/applications/whisperdesk.desktop"
cp "$here/whisperdesk/resources/whisperdesk.svg" "$data/icons/hicolor/scalable/apps/whisperdesk.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "installed $data/applications/whisperdesk.desktop"
