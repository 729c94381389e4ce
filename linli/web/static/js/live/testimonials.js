// Rolling testimonials (滚动证言) on the room's product cards and in the checkout sheet: approved
// neighbour reviews from /api/v1/reviews, the viewer's community first. Decorates the DOM that room.js
// and checkout.js own (adds one line to each card and to the sheet), never their logic.
const box = document.getElementById("live-testimonials");

if (box) {
  const config = JSON.parse(box.dataset.config || "{}");
  const byItem = config.products || {};
  const productIds = [...new Set(Object.values(byItem))];
  const ROLL_MS = 4000;
  const reviews = new Map(); // product id -> [review]
  let tick = 0;

  const line = (review) => `${review.who}:${"★".repeat(review.rating)} ${review.text}`;

  // The line goes at the end of ``host``, or right after ``after`` when given.
  const slotFor = (host, testid, after = null) => {
    let slot = host.querySelector(`[data-testid="${testid}"]`);
    if (!slot) {
      slot = document.createElement("p");
      slot.className = "live-testimonials-line";
      slot.dataset.testid = testid;
      slot.style.cssText = "margin:.3em 0 0;font-size:.8rem;color:#92400e;overflow:hidden;white-space:nowrap;text-overflow:ellipsis";
      if (after) after.after(slot);
      else host.append(slot);
    }
    return slot;
  };

  const show = (slot, productId) => {
    const list = reviews.get(Number(productId)) || [];
    if (!list.length) {
      slot.hidden = true;
      return;
    }
    const review = list[tick % list.length];
    slot.textContent = `${config.label || ""} ${line(review)}`.trim();
    slot.dataset.reviewId = String(review.id);
    slot.hidden = false;
  };

  let openItem = null;
  const sheet = document.getElementById("co-sheet");

  const render = () => {
    document.querySelectorAll('[data-testid="product-card"][data-item-id]').forEach((card) => {
      const productId = byItem[card.dataset.itemId];
      if (productId === undefined) return;
      const body = card.querySelector(".lr-card-body") || card;
      show(slotFor(body, "card-testimonial"), productId);
    });
    if (sheet && !sheet.hidden && openItem && byItem[openItem] !== undefined) {
      show(slotFor(sheet, "checkout-testimonial", sheet.querySelector(".co-head")), byItem[openItem]);
    }
  };

  // Which card opened the sheet: checkout.js opens it on a card's click.
  document.addEventListener(
    "click",
    (event) => {
      const card = event.target.closest && event.target.closest('[data-testid="product-card"][data-item-id]');
      if (card) openItem = card.dataset.itemId;
    },
    true,
  );
  if (sheet) {
    new MutationObserver(() => render()).observe(sheet, { attributes: true, attributeFilter: ["hidden"] });
  }

  const load = async () => {
    if (!productIds.length) return;
    const params = new URLSearchParams();
    productIds.forEach((id) => params.append("product_id", String(id)));
    if (config.community_id) params.set("community_id", String(config.community_id));
    params.set("limit", "50");
    const response = await fetch(`/api/v1/reviews?${params}`, { credentials: "same-origin" });
    if (!response.ok) return;
    reviews.clear();
    for (const review of await response.json()) {
      if (!reviews.has(review.product_id)) reviews.set(review.product_id, []);
      reviews.get(review.product_id).push(review);
    }
    render();
  };

  load().catch(() => {});
  setInterval(() => {
    tick += 1;
    render();
  }, ROLL_MS);
}
