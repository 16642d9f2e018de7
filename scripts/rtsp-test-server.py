#!/usr/bin/python3
"""A small RTSP server for greenroom's RTSP pull tests (GStreamer's gst-rtsp-server).

    scripts/rtsp-test-server.py PORT MEDIA_FILE [MOUNT]

Serves MEDIA_FILE (Matroska with H.264 video and AAC audio, as made by
`ffmpeg ... -c:v libx264 -bf 0 -c:a aac clip.mkv`) at rtsp://127.0.0.1:PORT/MOUNT (default
`/clip`), over RTP/TCP (interleaved) and RTP/UDP, whichever the client asks for. Every client
gets its own pipeline from the start of the file, at real time. Prints `ready` once listening.

Needs: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
(scripts/install-deps.sh test).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    port, media = sys.argv[1], sys.argv[2]
    mount = sys.argv[3] if len(sys.argv) == 4 else "/clip"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(False)
    location = media.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! matroskademux name=d '
        "d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
        "d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
    )
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
