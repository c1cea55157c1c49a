#!/usr/bin/env bash
# Makes the test clips of this folder and ffmpeg's reference decodes of them (VideoFramesMp4Test).
# ffmpeg (Debian's 5.1, libx264 / libx265) only makes test data here; casp never runs it.
# Source: 10 frames of a 72 x 40 window panning across chelsea.png (scikit-image sample data, CC0),
# at 10 frames per second: a width and height that are not multiples of the 16-pixel macroblock.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
photo="${1:-$here/../../../../../../../shared/images/photos/chelsea.png}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$here"
q=(-hide_banner -loglevel error -y)
ffmpeg "${q[@]}" -loop 1 -framerate 10 -i "$photo" -vf "scale=150:100,crop=72:40:x='n*7':y='n*5'" \
  -frames:v 10 -pix_fmt rgb24 "$tmp/src%02d.png"
in=(-framerate 10 -i "$tmp/src%02d.png")
x264=(-c:v libx264 -pix_fmt yuv420p)
# Decodable by jcodec: 8-bit 4:2:0 progressive Baseline / Main / High.
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v baseline baseline.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v main -x264-params keyint=5:bframes=2:b-adapt=0 main-bframes.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v high \
  -x264-params keyint=5:bframes=3:b-adapt=0:b-pyramid=normal:8x8dct=1 high-bframes.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v high -x264-params slices=3 high-slices.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v high -x264-params keyint=3:bframes=2:b-adapt=0:open-gop=1 high-opengop.mp4
# An AAC track stored before the video track.
ffmpeg "${q[@]}" "${in[@]}" -f lavfi -i "sine=frequency=440:duration=1" -map 1:a -map 0:v "${x264[@]}" -profile:v high \
  -c:a aac -b:a 16k -shortest high-audio-first.mp4
# 16-bit PCM audio stored before the video track, in a QuickTime file (as cameras write).
ffmpeg "${q[@]}" "${in[@]}" -f lavfi -i "sine=frequency=440:duration=0.2:sample_rate=8000" -map 1:a -map 0:v "${x264[@]}" \
  -profile:v high -c:a pcm_s16le high-pcm-audio-first.mov
# Variable frame rate: 0.1 s per frame, then 0.3 s.
ffmpeg "${q[@]}" "${in[@]}" -vf "setpts='if(lt(N,5),N*0.1,0.5+(N-5)*0.3)/TB'" -fps_mode vfr "${x264[@]}" -profile:v high vfr.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v high -color_range pc -x264-params fullrange=on fullrange.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -profile:v high -f mov high.mov
# An edit list that starts 0.3 s in: the track keeps all 10 frames, 7 are shown.
ffmpeg "${q[@]}" -ss 0.3 -i high-bframes.mp4 -c copy editlist.mp4
# Not decodable by jcodec: each must be one clear error.
ffmpeg "${q[@]}" "${in[@]}" -c:v libx264 -pix_fmt yuv420p10le high10.mp4
ffmpeg "${q[@]}" "${in[@]}" -c:v libx264 -pix_fmt yuv444p high444.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -flags +ildct+ilme -x264-params interlaced=1 interlaced.mp4
ffmpeg "${q[@]}" "${in[@]}" -c:v libx265 -pix_fmt yuv420p -x265-params log-level=none hevc.mp4
ffmpeg "${q[@]}" "${in[@]}" "${x264[@]}" -movflags frag_keyframe+empty_moov fragmented.mp4
# ffmpeg's decodes: the MD5 of every shown frame's yuv420p planes, in presentation order ...
for f in baseline.mp4 main-bframes.mp4 high-bframes.mp4 high-slices.mp4 high-opengop.mp4 high-audio-first.mp4 \
    high-pcm-audio-first.mov vfr.mp4 fullrange.mp4 editlist.mp4; do
  ffmpeg "${q[@]}" -i "$f" -map 0:v:0 -fps_mode passthrough -f framemd5 - | grep -v '^#' | awk -F', ' -v c="$f" '{print c, NR - 1, $6}'
done > ffmpeg-framemd5.txt
# ... and its RGB (swscale's default BT.601 conversion) of frame 3 (a B-frame) of two clips.
ffmpeg "${q[@]}" -i high-bframes.mp4 -vf "select=eq(n\,3)" -fps_mode passthrough -frames:v 1 -pix_fmt rgb24 high-bframes-frame3.png
ffmpeg "${q[@]}" -i fullrange.mp4 -vf "select=eq(n\,3)" -fps_mode passthrough -frames:v 1 -pix_fmt rgb24 fullrange-frame3.png
