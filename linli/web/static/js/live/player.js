// The room's video: the session's playback URL (HLS), played natively where the browser can (Safari,
// iOS, Chromium with built-in HLS) and otherwise through hls.js, which is fetched from /static/vendor/
// only then (the setup installs it: scripts/vendor-assets.sh). While the session is not live, or has no
// stream yet, the cover and a status line show instead of a black box. A stream that breaks is retried
// with backoff (a media decode error is first recovered in place); the viewer sees "reconnecting".
//
// video.dataset.engine says which engine plays ("native" or "hls.js"); video.dataset.state is
// "idle", "loading", "playing", "retrying" or "unsupported" — for the page's styles and for tests.

const HLS_MODULE = "/static/vendor/hls.js/hls.min.mjs";
const HLS_TYPE = "application/vnd.apple.mpegurl";
const MAX_RETRY_MS = 15000;
const MEDIA_RECOVERIES = 2;

let hlsModule = null;
const loadHls = () => {
  hlsModule ??= import(HLS_MODULE).then((m) => m.default);
  return hlsModule;
};

const isHls = (url) => /\.m3u8($|[?#])/i.test(url);

export function createPlayer({ video, offline = null, statusText = null, text = {} }) {
  let source = ""; // the URL attached now
  let hls = null;
  let retryTimer = null;
  let attempt = 0;

  const setState = (state) => {
    video.dataset.state = state;
  };
  // Without an offline box (the host's preview) the video stays where it is and says nothing.
  const showVideo = () => {
    video.hidden = false;
    if (offline) offline.hidden = true;
  };
  const showOffline = (message) => {
    if (!offline) return;
    video.hidden = true;
    offline.hidden = false;
    if (message && statusText) statusText.textContent = message;
  };

  const detach = () => {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (video.getAttribute("src")) {
      video.removeAttribute("src");
      video.load();
    }
    source = "";
    setState("idle");
  };

  const retry = (url) => {
    if (source !== url || retryTimer) return;
    const delay = Math.min(MAX_RETRY_MS, 1000 * 2 ** attempt) * (0.75 + Math.random() / 4);
    attempt += 1;
    setState("retrying");
    showOffline(text.stream_retry);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (source !== url) return;
      detach();
      attach(url);
    }, delay);
  };

  const attachNative = (url) => {
    video.dataset.engine = "native";
    video.src = url;
    video.play().catch(() => {});
  };

  const attachHls = async (url) => {
    video.dataset.engine = "hls.js";
    let Hls;
    try {
      Hls = await loadHls();
    } catch {
      hlsModule = null; // not installed or the request failed: try again on the next retry
      retry(url);
      return;
    }
    if (source !== url) return; // the session changed while the library loaded
    if (!Hls.isSupported()) {
      setState("unsupported");
      showOffline(text.player_unsupported);
      return;
    }
    const player = new Hls({ liveDurationInfinity: true, backBufferLength: 30 });
    hls = player;
    let recoveries = 0;
    player.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    player.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal || hls !== player) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recoveries < MEDIA_RECOVERIES) {
        recoveries += 1;
        player.recoverMediaError();
        return;
      }
      retry(url); // network or repeated media errors: rebuild the player after a pause
    });
    player.loadSource(url);
    player.attachMedia(video);
  };

  function attach(url) {
    source = url;
    setState("loading");
    showVideo();
    if (!isHls(url) || video.canPlayType(HLS_TYPE)) attachNative(url);
    else attachHls(url);
  }

  video.addEventListener("playing", () => {
    attempt = 0;
    setState("playing");
    showVideo();
  });
  video.addEventListener("error", () => {
    if (source && video.dataset.engine === "native") retry(source);
  });

  return {
    // session: {status, playback_url}; scheduled sessions keep the page's "starts at" line.
    show(session) {
      const url = session.playback_url || "";
      if (url) video.dataset.src = url;
      if (session.status === "live" && url) {
        if (source !== url) {
          detach();
          attach(url);
        }
        return;
      }
      detach();
      if (session.status === "ended") showOffline(text.not_live_ended);
      else if (session.status === "live") showOffline(text.not_live_waiting);
      else showOffline(null);
    },
  };
}
