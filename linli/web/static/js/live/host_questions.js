// The host console's most-asked questions, and the console's figures kept honest by the server.
// Questions: fetched on load, again shortly after a comment or reply arrives on the room's socket (host.js
// forwards every message as "live:message"), and every 20 s. Answering one posts the host's reply to the
// question's first wording — the same reply the comment list's "reply" makes.
// Figures: comments per minute over the last five minutes every 15 s; viewers and stock left come live from
// the socket, and the poll only corrects them (a socket that dropped leaves them stale).
import { el, postJSON } from "./channel.js";

const panel = document.getElementById("hc-questions");
const consoleRoot = document.getElementById("host-console");

if (panel && consoleRoot) {
  const text = JSON.parse(document.getElementById("questions-text").textContent);
  const sessionId = panel.dataset.sessionId;
  const api = `/api/v1/host/sessions/${sessionId}`;
  const list = panel.querySelector("[data-testid=questions]");
  const empty = panel.querySelector("[data-testid=questions-empty]");
  const form = document.getElementById("hcq-answer");
  const answering = panel.querySelector("[data-testid=answering]");
  const flash = panel.querySelector("[data-testid=questions-flash]");
  let target = null; // the question being answered
  let refreshTimer = null;

  const fill = (template, values) =>
    Object.entries(values).reduce((s, [k, v]) => s.replace(`{${k}}`, v), template);

  const getJSON = async (url) => {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    return response.ok ? response.json() : null;
  };

  const choose = (question) => {
    target = question;
    form.hidden = !question;
    answering.textContent = question ? fill(text.answering, { text: question.text }) : "";
    if (question) form.elements.text.focus();
  };
  panel.querySelector("[data-testid=answer-cancel]").addEventListener("click", () => choose(null));

  const row = (q) => {
    const item = el("li", q.answered ? "hcq-item is-answered" : "hcq-item");
    item.dataset.testid = "question";
    item.dataset.commentId = q.comment_id;
    item.append(el("b", null, q.text));
    item.append(el("span", "hcq-meta", `${fill(text.askers, { askers: q.askers, count: q.count })} · ${fill(text.asked_by, { name: q.user.name })}`));
    const others = q.samples.filter((s) => s !== q.text);
    if (others.length) {
      const samples = el("ul", "hcq-samples");
      others.forEach((s) => samples.append(el("li", null, s)));
      item.append(samples);
    }
    const button = el("button", "btn btn-small btn-ghost", q.answered ? text.answered : text.answer);
    button.type = "button";
    button.dataset.testid = "answer";
    button.addEventListener("click", () => choose(q));
    item.append(button);
    return item;
  };

  const refresh = async () => {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    const data = await getJSON(`${api}/questions?minutes=30&limit=12`).catch(() => null);
    if (!data) return;
    list.replaceChildren(...data.items.map(row));
    empty.hidden = data.items.length > 0;
  };
  const refreshSoon = () => {
    refreshTimer ??= setTimeout(refresh, 1500);
  };

  const figures = async () => {
    const data = await getJSON(`${api}/stats`).catch(() => null);
    if (!data) return;
    consoleRoot.querySelector("[data-testid=host-per-minute]").textContent = data.comments_per_minute;
    if (data.viewers !== null) consoleRoot.querySelector("[data-testid=host-viewers]").textContent = data.viewers;
    for (const item of data.items) {
      const node = consoleRoot.querySelector(
        `[data-testid=host-item][data-item-id="${item.item_id}"] [data-testid=host-stock]`,
      );
      if (node) node.textContent = item.stock_left;
    }
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!target) return;
    const input = form.elements.text;
    const result = await postJSON(`/api/v1/sessions/${sessionId}/comments`, {
      text: input.value,
      reply_to_id: target.comment_id,
    });
    flash.textContent = result.ok ? text.done : fill(text.failed, { detail: result.data?.detail || result.status });
    if (result.ok) {
      input.value = "";
      choose(null);
      refresh();
    }
  });

  consoleRoot.addEventListener("live:message", (event) => {
    const type = event.detail?.type;
    if (type === "comment" || type === "reply" || type === "comment_deleted") refreshSoon();
  });

  refresh();
  figures();
  setInterval(refresh, 20000);
  setInterval(figures, 15000);
}
