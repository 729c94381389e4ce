// The host console: the room's comments with reply / delete / mute / remove, pinning, going live and
// ending, viewers, likes, comments per minute and stock left — over the same socket viewers use.
import { connectRoom, el, postJSON } from "./channel.js";
import { createPlayer } from "./player.js";

const root = document.getElementById("host-console");

if (root) {
  const text = JSON.parse(document.getElementById("live-text").textContent);
  const sessionId = root.dataset.sessionId;
  const api = `/api/v1/host/sessions/${sessionId}`;
  const list = root.querySelector("[data-testid=host-comments]");
  const flash = root.querySelector("[data-testid=host-flash]");
  const compose = document.getElementById("hc-compose");
  const replying = root.querySelector("[data-testid=replying-to]");
  const cancelReply = root.querySelector("[data-testid=cancel-reply]");
  let replyTo = null;
  let pinned = root.dataset.pinned ? Number(root.dataset.pinned) : null;

  const say = (message) => {
    flash.textContent = message;
  };
  const act = async (url, body, method) => {
    const result = await postJSON(url, body, method);
    say(result.ok ? text.done : text.failed.replace("{detail}", result.data?.detail || result.status));
    return result;
  };

  const setReply = (comment) => {
    replyTo = comment;
    replying.hidden = cancelReply.hidden = !comment;
    replying.textContent = comment ? text.replying_to.replace("{name}", comment.user.name) : "";
    if (comment) compose.elements.text.focus();
  };
  cancelReply.addEventListener("click", () => setReply(null));

  // The host's preview plays whenever the session has a stream, live or not yet (to check the push).
  const video = root.querySelector("[data-testid=host-video]");
  if (video) createPlayer({ video }).show({ status: "live", playback_url: video.dataset.src });

  const button = (label, testid, onClick) => {
    const node = el("button", null, label);
    node.type = "button";
    node.dataset.testid = testid;
    node.addEventListener("click", onClick);
    return node;
  };

  const addComment = (m) => {
    if (list.querySelector(`[data-comment-id="${m.id}"]`)) return;
    const item = el("li", m.reply_to ? "hc-comment is-reply" : "hc-comment");
    item.dataset.commentId = m.id;
    item.dataset.testid = "host-comment";
    item.append(el("span", "lr-name", m.user.name));
    item.append(el("span", "lr-text", m.reply_to ? `@${m.reply_to.user.name} ${m.text}` : m.text));
    if (m.reply_to) item.append(el("q", "lr-quote", m.reply_to.text));
    const actions = el("span", "hc-comment-actions");
    actions.append(button(text.reply, "reply", () => setReply(m)));
    actions.append(button(text.delete, "delete", () => act(`${api}/comments/${m.id}`, undefined, "DELETE")));
    if (!m.staff) {
      actions.append(button(text.mute, "mute", () => act(`${api}/mutes`, { user_id: m.user.id, minutes: 10 })));
      actions.append(
        button(text.ban, "ban", () => {
          if (confirm(text.confirm_ban.replace("{name}", m.user.name))) act(`${api}/bans`, { user_id: m.user.id });
        }),
      );
    }
    item.append(actions);
    list.append(item);
    while (list.children.length > 300) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  };

  const paintLineup = () => {
    for (const node of root.querySelectorAll("[data-testid=host-item]")) {
      const isPinned = Number(node.dataset.itemId) === pinned;
      node.classList.toggle("is-pinned", isPinned);
      node.querySelector("[data-pin]").textContent = isPinned ? text.unpin : text.pin;
    }
  };
  const setStock = (id, left) => {
    const node = root.querySelector(`[data-testid=host-item][data-item-id="${id}"] [data-testid=host-stock]`);
    if (node) node.textContent = left;
  };
  const setStatus = (status) => {
    root.dataset.status = status;
    const badge = root.querySelector("[data-testid=host-status]");
    badge.className = `badge badge-${status}`;
    badge.textContent = text[`status_${status}`] || status;
    root.querySelector("[data-testid=go-live]").hidden = status !== "scheduled";
    root.querySelector("[data-testid=end-live]").hidden = status !== "live";
  };

  const handlers = {
    state(m) {
      list.replaceChildren();
      m.comments.forEach(addComment);
      pinned = m.pinned_item_id;
      paintLineup();
      m.lineup.forEach((item) => setStock(item.id, item.stock_left));
      root.querySelector("[data-testid=host-viewers]").textContent = m.viewers;
      root.querySelector("[data-testid=host-likes]").textContent = m.likes;
      setStatus(m.session.status);
    },
    comment(m) {
      addComment(m);
    },
    reply(m) {
      addComment(m);
    },
    comment_deleted(m) {
      list.querySelector(`[data-comment-id="${m.id}"]`)?.remove();
    },
    pinned_product(m) {
      pinned = m.item_id;
      paintLineup();
    },
    stock(m) {
      for (const [id, left] of Object.entries(m.items)) setStock(id, left);
    },
    lineup(m) {
      m.items.forEach((item) => setStock(item.id, item.stock_left));
    },
    viewers(m) {
      root.querySelector("[data-testid=host-viewers]").textContent = m.count;
    },
    like_burst(m) {
      root.querySelector("[data-testid=host-likes]").textContent = m.total;
    },
    session_status(m) {
      setStatus(m.status);
    },
    system_notice(m) {
      const item = el("li", "hc-comment");
      item.append(el("span", "lr-name", text.notice), el("span", "lr-text", m.text));
      list.append(item);
    },
  };
  connectRoom(sessionId, {
    onMessage: (m) => {
      handlers[m.type]?.(m);
      // Panels with their own script (the lottery, ...) listen here rather than in this file.
      root.dispatchEvent(new CustomEvent("live:message", { detail: m }));
    },
  });

  // Comments per minute (over the last five) come from the server's figures: host_questions.js.

  compose.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = compose.elements.text;
    const body = { text: input.value };
    if (replyTo) body.reply_to_id = replyTo.id;
    const result = await act(`/api/v1/sessions/${sessionId}/comments`, body);
    if (result.ok) {
      input.value = "";
      setReply(null);
    }
  });
  document.getElementById("hc-notice").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    if ((await act(`${api}/notices`, { text: input.value })).ok) input.value = "";
  });
  for (const node of root.querySelectorAll("[data-pin]")) {
    node.addEventListener("click", () => {
      const id = Number(node.dataset.pin);
      act(`${api}/pin`, { item_id: id === pinned ? null : id }, "PUT");
    });
  }
  for (const node of root.querySelectorAll("[data-to]")) {
    node.addEventListener("click", async () => {
      const to = node.dataset.to;
      if (!confirm(to === "live" ? text.confirm_live : text.confirm_end)) return;
      const result = await act(`${api}/transition`, { to });
      if (result.ok) setStatus(result.data.status);
    });
  }
}
