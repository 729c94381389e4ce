// The room's keyword lottery: what to comment, the prize and a countdown while it runs; the masked
// winners, the revealed seed and a link to the public entry list once drawn. Messages arrive through
// room.js (a "live:message" event on the room); the room's state (on join and after a reconnect) carries
// the current one, and it is polled while a draw is due but not yet heard of.
import { el, postJSON } from "./channel.js";

const box = document.querySelector("[data-testid=lottery]");
const room = document.getElementById("live-room");

if (box && room) {
  const text = JSON.parse(document.getElementById("lottery-text").textContent);
  const sessionId = box.dataset.sessionId;
  const q = (id) => box.querySelector(`[data-testid=${id}]`);
  let current = null;
  let poll = null;

  const fill = (template, values) =>
    Object.entries(values).reduce((s, [k, v]) => s.replace(`{${k}}`, v), template);

  const fromApi = (l) =>
    l && {
      id: l.id,
      status: l.status,
      keyword: l.keyword,
      prize_name: l.prize_name,
      winner_count: l.winner_count,
      ends_at: l.ends_at,
      seed_hash: l.seed_hash,
      seed: l.seed,
      entry_count: l.entry_count,
      winners: (l.winners || []).map((w) => w.name),
    };

  const countdown = () => {
    if (!current || current.status !== "running") return;
    const seconds = Math.max(0, Math.ceil((Date.parse(current.ends_at) - Date.now()) / 1000));
    q("lottery-countdown").textContent = seconds > 0 ? fill(text.ends_in, { seconds }) : text.drawing;
    if (seconds === 0 && !poll) poll = setInterval(load, 3000);
  };

  const render = () => {
    const l = current;
    box.hidden = !l;
    if (!l) return;
    box.dataset.lotteryId = l.id;
    box.dataset.status = l.status;
    const drawn = l.status === "drawn";
    q("lottery-state").textContent = drawn ? text.drawn : text.running;
    q("lottery-how").textContent = fill(text.how, { keyword: l.keyword, count: l.winner_count });
    q("lottery-prize").textContent = fill(text.prize, { prize: l.prize_name });
    q("lottery-seed-hash").textContent = l.seed_hash;
    q("lottery-join-box").hidden = drawn;
    q("lottery-countdown").hidden = drawn;
    q("lottery-result").hidden = !drawn;
    if (drawn) {
      if (poll) clearInterval(poll);
      poll = null;
      q("lottery-entries").textContent = fill(text.entries, { count: l.entry_count ?? 0 });
      const winners = l.winners.length
        ? l.winners.map((name) => {
            const item = el("li", null, name);
            item.dataset.testid = "lottery-winner";
            return item;
          })
        : [el("li", null, text.no_winners)];
      q("lottery-winners").replaceChildren(...winners);
      q("lottery-seed").textContent = l.seed || "";
      q("lottery-verify").href = `/api/v1/sessions/${sessionId}/lotteries/${l.id}`;
    } else {
      countdown();
    }
  };

  async function load() {
    try {
      const response = await fetch(`/api/v1/sessions/${sessionId}/lotteries/current`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const fresh = fromApi((await response.json()).lottery);
      // A message may have arrived meanwhile: never go back from drawn to running.
      if (fresh && current && current.id === fresh.id && current.status === "drawn") return;
      current = fresh;
      render();
    } catch {
      // The next message or reconnect brings it.
    }
  }

  const showStarted = (m) => {
    current = { ...m, id: m.lottery_id, status: "running", winners: [], seed: null, entry_count: null };
    render();
  };
  const showDrawn = (m) => {
    current = {
      ...(current && current.id === m.lottery_id ? current : {}),
      ...m,
      id: m.lottery_id,
      status: "drawn",
    };
    render();
  };

  room.addEventListener("live:message", (event) => {
    const m = event.detail;
    if (m.type === "state") {
      // The room's state carries its lottery (running, else the latest drawn): nothing to ask for.
      if (!m.lottery) {
        current = null;
        box.hidden = true;
      } else if (m.lottery.type === "lottery_drawn") showDrawn(m.lottery);
      else showStarted(m.lottery);
    } else if (m.type === "lottery_started") {
      showStarted(m);
    } else if (m.type === "lottery_drawn") {
      showDrawn(m);
    }
  });

  q("lottery-join")?.addEventListener("click", async (event) => {
    if (!current || current.status !== "running") return;
    const button = event.currentTarget;
    button.disabled = true;
    const result = await postJSON(`/api/v1/sessions/${sessionId}/comments`, { text: current.keyword });
    q("lottery-countdown").textContent = result.ok ? text.joined : result.data?.detail || text.error;
    setTimeout(() => {
      button.disabled = false;
    }, 3000);
  });

  setInterval(countdown, 1000);
}
