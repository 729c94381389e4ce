// The community picker in the checkout sheet (groupbuy/_community_picker.html): a neighbour without a
// community chooses one from a searchable list at their first order. checkout.js asks for it with
// "checkout:needs-community" (giving the sheet's slot) and reloads its options on "checkout:community-chosen".
import { el, postJSON } from "../live/channel.js";

const root = document.getElementById("live-room");
const template = document.getElementById("gb-community-picker");

if (root && template) {
  const text = JSON.parse(template.dataset.text || "{}");
  root.addEventListener("checkout:needs-community", (event) => {
    const slot = event.detail.slot;
    if (slot.querySelector(".gb-picker")) return;
    const box = el("div", "gb-picker");
    box.dataset.testid = "gb-picker";
    const input = el("input");
    input.type = "search";
    input.placeholder = text.search;
    input.dataset.testid = "gb-picker-search";
    const list = el("ul");
    list.dataset.testid = "gb-picker-list";
    box.append(el("p", "co-label", text.title), input, list);
    slot.replaceChildren(box);
    let asked = 0;
    const search = async () => {
      const mine = ++asked;
      const params = new URLSearchParams({ q: input.value.trim(), limit: "10" });
      const response = await fetch(`/api/v1/communities?${params}`, { headers: { Accept: "application/json" } });
      if (mine !== asked || !response.ok) return;
      const page = await response.json();
      if (!page.items.length) return list.replaceChildren(el("li", "muted", text.empty));
      list.replaceChildren(
        ...page.items.map((c) => {
          const li = el("li");
          const button = el("button", "", `${c.name} · ${c.address}`);
          button.type = "button";
          button.dataset.communityId = String(c.id);
          button.addEventListener("click", async () => {
            const result = await postJSON("/api/v1/me/community", { community_id: c.id }, "PUT");
            if (!result.ok) return;
            slot.replaceChildren(el("p", "co-hint", text.joined.split("{name}").join(c.name)));
            root.dispatchEvent(new CustomEvent("checkout:community-chosen", { detail: { community: result.data } }));
          });
          li.append(button);
          return li;
        }),
      );
    };
    let timer = 0;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    search();
  });
}
