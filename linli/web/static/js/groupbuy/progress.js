// The room's group-order progress (groupbuy/_room_progress.html): the neighbour's own community bar
// ("XX花园 已集42份,还差8份") and the leading communities. room.js re-dispatches every realtime message as
// "live:message"; the room coalesces `progress` per frame (only the communities that changed) and puts the
// whole board in `state` on join and after a resync.
const box = document.getElementById("gb-progress");
const root = document.getElementById("live-room");

if (box && root) {
  const text = JSON.parse(box.dataset.text || "{}");
  const mineId = box.dataset.communityId;
  const mineName = box.dataset.communityName;
  const fill = (template, values) =>
    Object.entries(values).reduce((s, [k, v]) => s.split(`{${k}}`).join(String(v)), template || "");
  const known = new Map();
  for (const li of box.querySelectorAll("[data-testid=gb-board] li")) {
    known.set(li.dataset.communityId, {
      community_id: Number(li.dataset.communityId),
      community_name: li.dataset.name,
      units: Number(li.dataset.units),
      threshold: Number(li.dataset.threshold),
    });
  }
  const threshold = Number(box.dataset.threshold) || 50;

  const paint = () => {
    const mineBox = box.querySelector("[data-testid=gb-mine]");
    const bar = box.querySelector("[data-testid=gb-bar]");
    if (mineBox && mineId) {
      const mine = known.get(mineId) || { units: 0, threshold, community_name: mineName };
      const left = Math.max(mine.threshold - mine.units, 0);
      mineBox.textContent = left
        ? fill(text.mine, { name: mineName, units: mine.units, left })
        : fill(text.reached, { name: mineName, units: mine.units });
      bar.setAttribute("aria-valuenow", String(mine.units));
      bar.setAttribute("aria-valuemax", String(mine.threshold));
      bar.firstElementChild.style.width = `${Math.min(100, Math.floor((mine.units * 100) / mine.threshold))}%`;
    }
    const board = box.querySelector("[data-testid=gb-board]");
    const leading = [...known.values()].sort((a, b) => b.units - a.units || a.community_id - b.community_id).slice(0, 5);
    board.replaceChildren(
      ...leading.map((g) => {
        const li = document.createElement("li");
        li.dataset.communityId = String(g.community_id);
        if (g.units >= g.threshold) li.className = "is-reached";
        const name = document.createElement("span");
        name.textContent = g.community_name;
        const units = document.createElement("span");
        units.textContent = `${g.units}/${g.threshold}`;
        li.append(name, units);
        return li;
      }),
    );
  };

  const merge = (items) => {
    for (const [key, entry] of Object.entries(items || {})) known.set(String(key), entry);
    paint();
  };

  root.addEventListener("live:message", (event) => {
    const m = event.detail;
    if (m.type === "progress") merge(m.items);
    else if (m.type === "state" && m.progress) merge(m.progress);
  });
}
