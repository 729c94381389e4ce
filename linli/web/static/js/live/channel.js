// The room's WebSocket: frames of {seq, msgs}, reconnect with backoff and ?since=<last seq>, and
// sequenced messages applied once each (a resumed or duplicated one is skipped by its seq).

const SEQUENCED = new Set([
  "comment", "reply", "comment_deleted", "pinned_product", "lineup", "session_status", "system_notice",
  "lottery_started", "lottery_drawn",
]);
// Close codes after which reconnecting is pointless: banned (4003), no such room (4004).
const FINAL = new Set([4003, 4004]);

export function connectRoom(sessionId, { onMessage, onStatus = () => {} }) {
  let seq = null;
  let socket = null;
  let attempt = 0;

  const url = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const since = seq === null ? "" : `?since=${seq}`;
    return `${scheme}://${location.host}/ws/live/${sessionId}${since}`;
  };

  const open = () => {
    socket = new WebSocket(url());
    socket.onopen = () => {
      attempt = 0;
      onStatus("open");
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      const before = seq;
      for (const message of frame.msgs) {
        if (message.type === "state") {
          seq = message.seq;
        } else if (SEQUENCED.has(message.type) && before !== null && message.seq <= before) {
          continue;
        }
        onMessage(message);
      }
      seq = frame.seq;
    };
    socket.onclose = (event) => {
      if (FINAL.has(event.code)) {
        onStatus("closed", event.code);
        return;
      }
      onStatus("reconnecting");
      const delay = Math.min(10000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      setTimeout(open, delay);
    };
  };

  open();
  return {
    send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
  };
}

export function formatFen(fen) {
  const yuan = Math.floor(Math.abs(fen) / 100);
  const rest = Math.abs(fen) % 100;
  return `${fen < 0 ? "-" : ""}¥${yuan}${rest ? "." + String(rest).padStart(2, "0") : ""}`;
}

// Elements with text set through textContent only: comments are never markup.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export async function postJSON(url, body, method = "POST") {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data };
}
