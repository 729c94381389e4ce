// The host console's lottery panel: start a keyword lottery, watch its countdown, draw it early, and list
// this session's lotteries with their winners. Room messages come through host.js ("live:message").
import { el, postJSON } from "./channel.js";

const panel = document.getElementById("hc-lottery");
const consoleRoot = document.getElementById("host-console");

if (panel && consoleRoot) {
  const text = JSON.parse(document.getElementById("lottery-text").textContent);
  const sessionId = panel.dataset.sessionId;
  const api = `/api/v1/host/sessions/${sessionId}/lotteries`;
  const form = panel.querySelector("[data-testid=lottery-form]");
  const flash = panel.querySelector("[data-testid=lottery-flash]");
  const list = panel.querySelector("[data-testid=host-lotteries]");
  let lotteries = [];

  const fill = (template, values) =>
    Object.entries(values).reduce((s, [k, v]) => s.replace(`{${k}}`, v), template);

  const row = (l) => {
    const item = el("li");
    item.dataset.testid = "host-lottery-item";
    item.dataset.lotteryId = l.id;
    item.dataset.status = l.status;
    const head = el("p");
    head.append(
      el("b", null, `${l.keyword} · ${l.prize_name} × ${l.winner_count}`),
      el("span", null, ` · ${l.status === "drawn" ? text.done : text.running}`),
    );
    item.append(head);
    if (l.status === "running") {
      const seconds = Math.max(0, Math.ceil((Date.parse(l.ends_at) - Date.now()) / 1000));
      const left = el("p", null, seconds > 0 ? fill(text.ends_in, { seconds }) : text.drawing);
      left.dataset.testid = "host-lottery-countdown";
      left.dataset.endsAt = l.ends_at;
      const draw = el("button", "btn btn-small", text.draw_now);
      draw.type = "button";
      draw.dataset.testid = "lottery-draw";
      draw.addEventListener("click", async () => {
        draw.disabled = true;
        const result = await postJSON(`${api}/${l.id}/draw`);
        flash.textContent = result.ok
          ? text.started
          : fill(text.failed, { detail: result.data?.detail || result.status });
        await load();
      });
      item.append(left, draw);
    } else {
      item.append(el("p", null, fill(text.entries, { count: l.entry_count ?? 0 })));
      const names = l.winners.map((w) => w.name).join("、") || text.no_winners;
      const winners = el("p", null, `${text.winners}: ${names}`);
      winners.dataset.testid = "host-lottery-winners";
      item.append(winners, el("small", null, `${text.seed}: ${l.seed}`));
    }
    item.append(el("small", null, `${text.seed_hash}: ${l.seed_hash}`));
    return item;
  };

  const render = () => {
    list.replaceChildren(...(lotteries.length ? lotteries.map(row) : [el("li", null, text.none)]));
  };

  async function load() {
    const response = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) return;
    lotteries = (await response.json()).items;
    render();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = {
      keyword: data.keyword,
      prize_name: data.prize_name,
      duration_seconds: Number(data.duration_seconds),
      winner_count: Number(data.winner_count),
      prize_coupon_template_id: data.prize_coupon_template_id ? Number(data.prize_coupon_template_id) : null,
    };
    const button = form.querySelector("button");
    button.disabled = true;
    const result = await postJSON(api, body);
    button.disabled = false;
    flash.textContent = result.ok
      ? text.started
      : fill(text.failed, { detail: result.data?.detail || result.status });
    if (result.ok) form.elements.keyword.value = "";
    await load();
  });

  consoleRoot.addEventListener("live:message", (event) => {
    if (["lottery_started", "lottery_drawn", "state"].includes(event.detail.type)) load();
  });
  // The countdowns, and a drawn lottery shows up even if its message was missed.
  setInterval(() => {
    if (lotteries.some((l) => l.status === "running")) {
      for (const node of list.querySelectorAll("[data-testid=host-lottery-countdown]")) {
        const seconds = Math.max(0, Math.ceil((Date.parse(node.dataset.endsAt) - Date.now()) / 1000));
        node.textContent = seconds > 0 ? fill(text.ends_in, { seconds }) : text.drawing;
      }
      if (lotteries.some((l) => l.status === "running" && Date.parse(l.ends_at) < Date.now() - 2000)) load();
    }
  }, 1000);
  load();
}
