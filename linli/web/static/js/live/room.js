// The neighbours' live room: comments over the video, likes, viewers, the lineup with live stock and
// the card being explained on top. Everything arrives over the room's socket (channel.js).
import { connectRoom, el, formatFen, postJSON } from "./channel.js";
import { createPlayer } from "./player.js";

const root = document.getElementById("live-room");

if (root) {
  const text = JSON.parse(document.getElementById("live-text").textContent);
  const sessionId = root.dataset.sessionId;
  const lowStock = Number(root.dataset.lowStock || 100);
  const list = root.querySelector("[data-testid=comments]");
  const viewers = root.querySelector("[data-testid=viewer-count]");
  const likeCount = root.querySelector("[data-testid=like-count]");
  const lineupBox = root.querySelector("[data-testid=lineup]");
  const banner = root.querySelector("[data-testid=room-banner]");
  const video = document.getElementById("lr-video");
  const offline = root.querySelector("[data-testid=not-live]");
  const statusText = root.querySelector("[data-testid=status-text]");
  const form = document.getElementById("lr-compose");
  const error = root.querySelector("[data-testid=comment-error]");
  let lineup = [];
  let pinned = root.dataset.pinned ? Number(root.dataset.pinned) : null;
  const MAX_COMMENTS = 80;

  const fill = (template, count) => template.replace("{count}", count);

  const showBanner = (message) => {
    banner.textContent = message || "";
    banner.hidden = !message;
  };

  const commentItem = (m) => {
    const item = el("li", m.type === "reply" ? "lr-comment is-reply" : "lr-comment");
    item.dataset.commentId = m.id;
    item.dataset.testid = "comment";
    if (m.staff) item.classList.add("is-staff");
    item.append(el("span", "lr-name", m.user.name));
    if (m.reply_to) {
      item.append(el("span", "lr-text", `@${m.reply_to.user.name} ${m.text}`));
      item.append(el("q", "lr-quote", m.reply_to.text));
    } else {
      item.append(el("span", "lr-text", m.text));
    }
    return item;
  };

  const addComment = (m) => {
    if (list.querySelector(`[data-comment-id="${m.id}"]`)) return;
    list.append(commentItem(m));
    while (list.children.length > MAX_COMMENTS) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  };

  const stockText = (left) =>
    left <= 0 ? text.sold_out : left <= lowStock ? fill(text.only_left, left) : fill(text.left, left);

  const card = (item) => {
    const node = el("article", "lr-card");
    node.dataset.itemId = item.id;
    node.dataset.testid = "product-card";
    if (item.photo_url) {
      const img = el("img", "lr-card-photo");
      img.src = item.photo_url;
      img.alt = "";
      img.loading = "lazy";
      node.append(img);
    } else {
      node.append(el("div", "lr-card-photo"));
    }
    const body = el("div", "lr-card-body");
    const badge = el("span", "lr-explaining", text.explaining);
    badge.dataset.testid = "explaining";
    const prices = el("p", "lr-card-prices");
    const live = el("span", "price-live", formatFen(item.live_price_fen));
    live.dataset.testid = "live-price";
    const store = el("span", "price-store", formatFen(item.store_price_fen));
    store.dataset.testid = "store-price";
    prices.append(live, store);
    const stock = el("p", "lr-card-stock");
    stock.dataset.testid = "stock";
    const buy = el("div");
    buy.dataset.slot = "buy";
    const buyButton = el("button", "lr-buy btn btn-small", text.buy);
    buyButton.type = "button";
    buyButton.dataset.testid = "buy";
    buy.append(buyButton);
    body.append(badge, el("h3", "lr-card-name", item.name), prices, stock, buy);
    node.append(body);
    return node;
  };

  const paintCard = (node, item) => {
    const isPinned = item.id === pinned;
    node.classList.toggle("is-pinned", isPinned);
    node.classList.toggle("is-sold-out", item.stock_left <= 0);
    node.classList.toggle("is-off-sale", !item.on_sale);
    node.querySelector("[data-testid=explaining]").hidden = !isPinned;
    node.querySelector("[data-testid=stock]").textContent = stockText(item.stock_left);
  };

  const renderLineup = () => {
    const ordered = [...lineup].sort((a, b) => (b.id === pinned) - (a.id === pinned));
    const existing = new Map([...lineupBox.children].map((n) => [Number(n.dataset.itemId), n]));
    const nodes = ordered.map((item) => {
      const node = existing.get(item.id) || card(item);
      paintCard(node, item);
      return node;
    });
    lineupBox.replaceChildren(...nodes);
  };

  const player = createPlayer({ video, offline, statusText, text });
  const setStatus = (session) => {
    player.show(session);
    root.dataset.status = session.status;
  };
  setStatus({ status: root.dataset.status, playback_url: video.dataset.src });

  const handlers = {
    state(m) {
      list.replaceChildren();
      m.comments.forEach(addComment);
      lineup = m.lineup;
      pinned = m.pinned_item_id;
      renderLineup();
      viewers.textContent = fill(text.viewers, m.viewers);
      likeCount.textContent = m.likes;
      setStatus({ ...m.session });
    },
    comment: addComment,
    reply: addComment,
    comment_deleted(m) {
      list.querySelector(`[data-comment-id="${m.id}"]`)?.remove();
    },
    pinned_product(m) {
      pinned = m.item_id;
      renderLineup();
    },
    lineup(m) {
      lineup = m.items;
      renderLineup();
    },
    stock(m) {
      for (const item of lineup) {
        if (String(item.id) in m.items) item.stock_left = m.items[item.id];
      }
      renderLineup();
    },
    viewers(m) {
      viewers.textContent = fill(text.viewers, m.count);
    },
    like_burst(m) {
      likeCount.textContent = m.total;
    },
    session_status(m) {
      setStatus({ status: m.status, playback_url: video ? video.dataset.src : "" });
    },
    system_notice(m) {
      const item = el("li", "lr-comment is-notice");
      item.append(el("span", "lr-name", text.notice), el("span", "lr-text", m.text));
      list.append(item);
    },
  };

  const room = connectRoom(sessionId, {
    onMessage: (m) => {
      handlers[m.type]?.(m);
      // Panels with their own script (the lottery, ...) listen here rather than in this file.
      root.dispatchEvent(new CustomEvent("live:message", { detail: m }));
    },
    onStatus: (status, code) => {
      if (status === "open") showBanner("");
      else if (status === "reconnecting") showBanner(text.reconnecting);
      else if (status === "closed") showBanner(code === 4003 ? text.banned : text.gone);
    },
  });

  // Likes: taps are counted here and sent twice a second, not one message a tap.
  let taps = 0;
  root.querySelector("[data-testid=like]").addEventListener("click", () => {
    taps += 1;
    likeCount.textContent = Number(likeCount.textContent || 0) + 1;
  });
  setInterval(() => {
    if (taps > 0) {
      room.send({ type: "like", n: Math.min(taps, 20) });
      taps = 0;
    }
  }, 500);

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = form.elements.text;
      const value = input.value.trim();
      if (!value) return;
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const result = await postJSON(`/api/v1/sessions/${sessionId}/comments`, { text: value });
        if (result.ok) {
          input.value = "";
          error.hidden = true;
          addComment({ type: "comment", ...result.data });
        } else {
          error.textContent = text[result.data?.error] || text.error;
          error.hidden = false;
        }
      } catch {
        error.textContent = text.error;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }
}
