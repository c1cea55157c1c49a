#!/usr/bin/env bash
# For each VIDEO: ffmpeg decodes every shown frame to PNG (rotation applied, as players show it),
# casp decodes the same frames, and VideoVsFfmpeg.java prints the mean absolute error per frame.
#   src/scripts/video-vs-ffmpeg.sh VIDEO...
# Needs ffmpeg (only to make the reference) and the built jar (./mvnw -q -B -o -DskipTests package).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for video in "$@"; do
  rm -f "$tmp"/*.png
  ffmpeg -hide_banner -loglevel error -i "$video" -map 0:v:0 -fps_mode passthrough -pix_fmt rgb24 "$tmp/f%05d.png"
  printf '%s: ' "$(basename "$video")"
  java -Xmx3g -cp "$here/target/casp.jar" "$here/src/scripts/VideoVsFfmpeg.java" "$video" "$tmp"
done
