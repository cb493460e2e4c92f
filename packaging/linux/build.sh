#!/usr/bin/env bash
# Linux packages from the PyInstaller bundle (dist/semstudio): a .tar.gz and a .deb installing under
# /opt/semstudio. Usage: packaging/linux/build.sh [VARIANT]   (VARIANT: cpu, the default, or cuda)
set -euo pipefail
cd "$(dirname "$0")/../.."
VARIANT="${1:-cpu}"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -1)"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
BUNDLE=dist/semstudio
OUT=dist/packages
LIMIT_MB=$([ "$VARIANT" = cpu ] && echo 1200 || echo 6000)      # CPU build: at most 1.2 GB (1.2e9 bytes) unpacked
[ -x "$BUNDLE/semstudio" ] || { echo "no bundle at $BUNDLE: run pyinstaller first (make package)" >&2; exit 2; }
mkdir -p "$OUT"

# as Debian's dh_strip does for shared libraries: drop static symbol tables, debug sections and notes; the
# dynamic symbols the loader needs stay. Only torch's libraries (libtorch_cpu alone carries ~90 MB of
# symbols) and libpython: wheels repaired by auditwheel (hashed names under *.libs/) were rewritten by
# patchelf, and strip can break such files, so they are left alone.
if command -v strip >/dev/null; then
    find "$BUNDLE/_internal/torch/lib" "$BUNDLE/_internal" -maxdepth 1 -type f \
        \( -name "libtorch*.so" -o -name "libc10.so" -o -name "libshm.so" -o -name "libpython3*.so*" \) -print0 |
        xargs -0 -r strip --remove-section=.comment --remove-section=.note --strip-unneeded
else
    echo "note: binutils' strip not found; the bundle keeps its symbol tables" >&2
fi
SIZE_MB=$(( ($(du -sb "$BUNDLE" | cut -f1) + 999999) / 1000000 ))     # decimal MB, rounded up
echo "bundle: $BUNDLE is ${SIZE_MB} MB unpacked (limit for $VARIANT: ${LIMIT_MB} MB)"
echo "{\"variant\": \"$VARIANT\", \"version\": \"$VERSION\", \"unpacked_mb\": $SIZE_MB, \"limit_mb\": $LIMIT_MB}" \
    > "$OUT/bundle-size.json"
if [ "$SIZE_MB" -gt "$LIMIT_MB" ]; then
    echo "the $VARIANT bundle is over its size limit" >&2
    exit 1
fi

# ---- .tar.gz: the bundle with a desktop file and icon (run ./semstudio, or install-desktop.sh)
NAME="semstudio-$VERSION-linux-$ARCH-$VARIANT"
STAGE="build/package/$NAME"
rm -rf "build/package" && mkdir -p "$STAGE"
cp -a "$BUNDLE/." "$STAGE/"
cp packaging/linux/semstudio.desktop packaging/semstudio.png packaging/linux/semstudio-mime.xml "$STAGE/"
cat > "$STAGE/install-desktop.sh" <<'INNER'
#!/bin/sh
# Adds Semantic Studio to your desktop menu (for this user), pointing at this folder.
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$HOME/.local/share/applications" "$HOME/.local/share/icons/hicolor/256x256/apps" "$HOME/.local/share/mime/packages"
sed "s|^Exec=semstudio|Exec=$HERE/semstudio|" "$HERE/semstudio.desktop" > "$HOME/.local/share/applications/semstudio.desktop"
cp "$HERE/semstudio.png" "$HOME/.local/share/icons/hicolor/256x256/apps/semstudio.png"
cp "$HERE/semstudio-mime.xml" "$HOME/.local/share/mime/packages/semstudio.xml"
command -v update-mime-database >/dev/null && update-mime-database "$HOME/.local/share/mime" || true
echo "Semantic Studio added to the menu."
INNER
chmod +x "$STAGE/install-desktop.sh"
tar -C build/package -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "wrote $OUT/$NAME.tar.gz ($(du -m "$OUT/$NAME.tar.gz" | cut -f1) MB)"

# ---- .deb: /opt/semstudio, /usr/bin/semstudio, menu entry, icon, .semstudio file type
DEB="build/deb/semstudio"
rm -rf build/deb && mkdir -p "$DEB/DEBIAN" "$DEB/opt" "$DEB/usr/bin" "$DEB/usr/share/applications" \
    "$DEB/usr/share/icons/hicolor/256x256/apps" "$DEB/usr/share/mime/packages" "$DEB/usr/share/doc/semstudio"
cp -a "$BUNDLE" "$DEB/opt/semstudio"
ln -s /opt/semstudio/semstudio "$DEB/usr/bin/semstudio"
cp packaging/linux/semstudio.desktop "$DEB/usr/share/applications/"
cp packaging/semstudio.png "$DEB/usr/share/icons/hicolor/256x256/apps/semstudio.png"
cp packaging/linux/semstudio-mime.xml "$DEB/usr/share/mime/packages/semstudio.xml"
cp packaging/linux/copyright "$DEB/usr/share/doc/semstudio/copyright"
INSTALLED_KB=$(du -sk "$DEB" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$INSTALLED_KB/" -e "s/@VARIANT@/$VARIANT/" \
    packaging/linux/control.in > "$DEB/DEBIAN/control"
install -m 0755 packaging/linux/postinst "$DEB/DEBIAN/postinst"
install -m 0755 packaging/linux/postrm "$DEB/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zxz --build "$DEB" "$OUT/semstudio_${VERSION}_${ARCH}-${VARIANT}.deb" >/dev/null
echo "wrote $OUT/semstudio_${VERSION}_${ARCH}-${VARIANT}.deb ($(du -m "$OUT/semstudio_${VERSION}_${ARCH}-${VARIANT}.deb" | cut -f1) MB)"
