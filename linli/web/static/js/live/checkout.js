// The checkout sheet over the live room (live/_checkout_sheet.html): tap a card → the sheet with the
// server's quote → 立即支付 places the order (one Idempotency-Key per opening, so a double tap or a retry
// cannot order twice) and opens the sandbox cashier → back in the room, the order shown paid.
// A returning neighbour needs three taps: the card, 立即支付, and 支付 on the cashier.
// Also the purchase ticker, fed by the room's `purchase` messages (room.js re-dispatches them).
import { el, formatFen, postJSON } from "./channel.js";

const root = document.getElementById("live-room");
const sheet = document.getElementById("co-sheet");

if (root && sheet) {
  const text = JSON.parse(sheet.dataset.text || "{}");
  const sessionId = Number(sheet.dataset.sessionId);
  const loggedIn = sheet.dataset.loggedIn === "true";
  const $ = (id) => sheet.querySelector(`[data-testid="${id}"]`);
  const backdrop = root.querySelector("[data-testid=checkout-backdrop]");
  const lineupBox = root.querySelector("[data-testid=lineup]");
  const payButton = $("checkout-pay");
  const errorBox = $("checkout-error");
  const qtyOut = $("qty");
  const storeSelect = $("store-select");
  const couponSelect = $("coupon-select");
  const phone = $("checkout-phone");

  const fill = (template, values) =>
    Object.entries(values).reduce((s, [k, v]) => s.split(`{${k}}`).join(String(v)), template || "");
  const errorText = (name) => text[`err_${name}`] || text.err_other;

  const newKey = () => {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  };

  // What the sheet is showing: one opening of it.
  let current = null;
  let options = null;

  const toLogin = () => {
    window.location.href = sheet.dataset.loginUrl;
  };

  const showError = (message) => {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  };

  const getJSON = async (url) => {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  };

  const markSoldOut = (itemId) => {
    const card = lineupBox.querySelector(`[data-item-id="${itemId}"]`);
    if (!card) return;
    card.classList.add("is-sold-out");
  };

  const fulfilment = () => sheet.querySelector("input[name=co-fulfilment]:checked").value;

  const setPayable = () => {
    const quote = current?.quote;
    const ok = Boolean(quote) && quote.max_quantity >= current.quantity && current.quantity >= 1;
    payButton.disabled = !ok || current.busy;
    payButton.textContent = current.busy ? text.paying : quote ? fill(text.pay, { amount: formatFen(quote.total_fen) }) : text.loading;
  };

  const paintQuote = (quote) => {
    $("checkout-name").textContent = quote.product_name;
    $("checkout-live-price").textContent = formatFen(quote.unit_price_fen);
    $("checkout-store-price").textContent = formatFen(quote.store_price_fen);
    qtyOut.textContent = current.quantity;
    $("qty-minus").disabled = current.quantity <= 1;
    $("qty-plus").disabled = current.quantity >= quote.max_quantity;
    $("qty-limit").textContent = fill(text.limit, {
      limit: quote.per_user_limit,
      max: Math.max(quote.per_user_limit - quote.held, 0),
    });
    $("bd-subtotal").textContent = `${formatFen(quote.unit_price_fen)} × ${quote.quantity} = ${formatFen(quote.subtotal_fen)}`;
    $("bd-store").textContent = formatFen(quote.store_total_fen);
    const discount = quote.coupon_discount_fen ?? quote.discount_fen ?? 0;
    sheet.querySelectorAll("[data-coupon-line]").forEach((node) => {
      node.hidden = !discount;
    });
    $("bd-coupon").textContent = `−${formatFen(discount)}`;
    $("bd-total").textContent = formatFen(quote.total_fen);
    $("bd-saving").textContent = quote.saving_fen > 0 ? fill(text.saving, { amount: formatFen(quote.saving_fen) }) : "";
    // Coupons arrive with the quote when the server has them: a picker, the best one chosen first.
    const offers = Array.isArray(quote.coupons) ? quote.coupons : [];
    $("coupon-row").hidden = offers.length === 0 && !current.couponId;
    const choices = [el("option", "", text.no_coupon)];
    choices[0].value = "";
    for (const offer of offers) {
      const option = el("option", "", fill(text.coupon_off, { name: offer.name, amount: formatFen(offer.discount_fen) }));
      option.value = String(offer.coupon_id);
      choices.push(option);
    }
    couponSelect.replaceChildren(...choices);
    couponSelect.value = current.couponId ? String(current.couponId) : "";
    if (quote.stock_left <= 0) {
      showError(errorText("SoldOut"));
      markSoldOut(quote.lineup_item_id);
    } else if (quote.max_quantity <= 0) {
      showError(errorText("PurchaseLimitReached"));
    }
    setPayable();
  };

  // Every change asks the server again; an answer to an older question is dropped.
  const requote = async () => {
    const opening = current;
    const asked = ++opening.asked;
    const params = new URLSearchParams({
      session_id: String(sessionId),
      lineup_item_id: String(opening.itemId),
      quantity: String(opening.quantity),
    });
    if (opening.couponId) params.set("coupon_id", String(opening.couponId));
    opening.quote = null;
    setPayable();
    const result = await getJSON(`/api/v1/orders/quote?${params}`);
    if (opening !== current || asked !== opening.asked) return;
    if (result.status === 401) return toLogin();
    if (!result.ok) {
      const name = result.data?.error;
      if (opening.couponId && name && name.startsWith("Coupon")) {
        opening.couponId = null;
        // A coupon the sheet chose by itself that no longer fits (fewer units) just comes off.
        if (opening.picked) showError(errorText(name));
        return requote();
      }
      showError(errorText(name));
      if (name === "SoldOut") markSoldOut(opening.itemId);
      return;
    }
    const quote = result.data;
    if (!opening.picked && !opening.couponId && Array.isArray(quote.coupons) && quote.coupons.length) {
      // The best coupon that fits is applied — also once more units reach its minimum spend — unless
      // the neighbour has picked another (or none) themselves.
      opening.couponId = quote.coupons[0].coupon_id;
      return requote();
    }
    if (quote.max_quantity > 0 && opening.quantity > quote.max_quantity) {
      opening.quantity = quote.max_quantity;
      return requote();
    }
    opening.quote = quote;
    paintQuote(quote);
  };

  const paintOptions = () => {
    phone.value = phone.value || options.contact_phone || "";
    const point = options.pickup_points[0];
    $("pickup-place").textContent = point ? `· ${options.community_name} ${point.name}` : `· ${text.no_pickup}`;
    $("fulfil-pickup").disabled = !point;
    const stores = options.stores.map((store) => {
      const option = el("option", "", `${store.name} · ${store.address}`);
      option.value = String(store.id);
      return option;
    });
    storeSelect.replaceChildren(...stores);
    $("fulfil-store").disabled = stores.length === 0;
    if (!point && stores.length) $("fulfil-store").checked = true;
    if (point) $("fulfil-pickup").checked = true;
    storeSelect.hidden = fulfilment() !== "store";
    // No community yet: a higher domain's script (the group-order community picker) fills the slot.
    const slot = sheet.querySelector("[data-slot=checkout-community]");
    if (slot && !options.community_id) root.dispatchEvent(new CustomEvent("checkout:needs-community", { detail: { slot } }));
  };

  // The neighbour chose a community in that slot: its pickup points become the default.
  root.addEventListener("checkout:community-chosen", async () => {
    const result = await getJSON("/api/v1/orders/checkout-options");
    if (result.ok) {
      options = result.data;
      paintOptions();
    }
  });

  const open = async (card) => {
    if (!loggedIn) return toLogin();
    const itemId = Number(card.dataset.itemId);
    current = { itemId, quantity: 1, couponId: null, picked: false, key: newKey(), quote: null, asked: 0, busy: false };
    showError("");
    const photo = card.querySelector("img.lr-card-photo");
    $("checkout-photo").hidden = !photo;
    if (photo) $("checkout-photo").src = photo.src;
    $("checkout-name").textContent = card.querySelector(".lr-card-name")?.textContent || "";
    $("checkout-live-price").textContent = card.querySelector("[data-testid=live-price]")?.textContent || "";
    $("checkout-store-price").textContent = card.querySelector("[data-testid=store-price]")?.textContent || "";
    qtyOut.textContent = "1";
    sheet.hidden = false;
    backdrop.hidden = false;
    document.body.classList.add("co-open");
    setPayable();
    const loading = [requote()];
    if (!options) {
      loading.push(
        getJSON("/api/v1/orders/checkout-options").then((result) => {
          if (result.status === 401) return toLogin();
          if (result.ok) {
            options = result.data;
            paintOptions();
          }
        }),
      );
    }
    await Promise.all(loading);
  };

  const close = () => {
    current = null;
    sheet.hidden = true;
    backdrop.hidden = true;
    document.body.classList.remove("co-open");
  };

  const pay = async () => {
    const opening = current;
    if (!opening?.quote || opening.busy) return;
    opening.busy = true;
    showError("");
    setPayable();
    const body = {
      session_id: sessionId,
      lineup_item_id: opening.itemId,
      quantity: opening.quantity,
      fulfilment: fulfilment(),
    };
    if (body.fulfilment === "store") body.store_id = Number(storeSelect.value);
    else if (options?.pickup_points[0]) body.pickup_point_id = options.pickup_points[0].id;
    const typed = phone.value.trim();
    if (typed) body.contact_phone = typed;
    if (opening.couponId) body.coupon_id = opening.couponId;
    // The payment opens with the order: the cashier is one round trip away.
    body.pay = {};
    try {
      const response = await fetch("/api/v1/orders", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": opening.key },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      const order = await response.json().catch(() => null);
      if (response.status === 401) return toLogin();
      if (!response.ok) {
        const name = order?.error;
        showError(errorText(name));
        if (name === "SoldOut") markSoldOut(opening.itemId);
        // A refused order holds nothing: the next tap is a new attempt with a new key.
        opening.key = newKey();
        return;
      }
      const back = `/live/${sessionId}?paid=${order.id}`;
      if (order.status === "paid") {
        // A coupon paid for all of it: nothing to pay at a cashier.
        window.location.href = back;
        return;
      }
      let url = order.payment?.checkout?.url;
      if (!url) {
        // The payment did not open with the order (the processor slow to answer): ask again on its own.
        const payment = await postJSON(`/api/v1/orders/${order.id}/payments`, {});
        url = payment.data?.checkout?.url;
        if (!payment.ok || !url) {
          showError(errorText(payment.data?.error));
          return;
        }
      }
      const cashier = new URL(url, window.location.href);
      cashier.searchParams.set("next", back);
      window.location.href = cashier.toString();
    } catch {
      showError(text.err_other);
    } finally {
      opening.busy = false;
      if (opening === current) setPayable();
    }
  };

  lineupBox.addEventListener("click", (event) => {
    const card = event.target.closest("[data-testid=product-card]");
    if (card) open(card);
  });
  $("checkout-close").addEventListener("click", close);
  backdrop.addEventListener("click", close);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !sheet.hidden) close();
  });
  $("qty-minus").addEventListener("click", () => {
    if (!current || current.quantity <= 1) return;
    current.quantity -= 1;
    qtyOut.textContent = current.quantity;
    showError("");
    requote();
  });
  $("qty-plus").addEventListener("click", () => {
    if (!current?.quote || current.quantity >= current.quote.max_quantity) return;
    current.quantity += 1;
    qtyOut.textContent = current.quantity;
    requote();
  });
  sheet.querySelectorAll("input[name=co-fulfilment]").forEach((radio) => {
    radio.addEventListener("change", () => {
      storeSelect.hidden = fulfilment() !== "store";
    });
  });
  couponSelect.addEventListener("change", () => {
    if (!current) return;
    current.couponId = couponSelect.value ? Number(couponSelect.value) : null;
    current.picked = true;
    showError("");
    requote();
  });
  payButton.addEventListener("click", pay);

  // The ticker: "XX花园的王*刚刚下单了3份", newest on top, the last three shown.
  const ticker = root.querySelector("[data-testid=ticker]");
  const slot = root.querySelector("[data-slot=ticker]");
  if (slot) slot.append(ticker);
  const seen = new Set();
  const addPurchase = (p) => {
    if (p.e && seen.has(p.e)) return;
    if (p.e) seen.add(p.e);
    const line = p.community
      ? fill(text.ticker, { community: p.community, buyer: p.buyer, quantity: p.quantity })
      : fill(text.ticker_no_community, { buyer: p.buyer, quantity: p.quantity });
    const item = el("li", "co-ticker-line", line);
    item.dataset.testid = "ticker-line";
    ticker.prepend(item);
    while (ticker.children.length > 3) ticker.lastElementChild.remove();
    ticker.hidden = false;
  };
  root.addEventListener("live:message", (event) => {
    const m = event.detail;
    if (m.type === "purchase") m.items.forEach(addPurchase);
    else if (m.type === "state" && Array.isArray(m.purchases)) m.purchases.forEach(addPurchase);
    else if (m.type === "stock" && current && String(current.itemId) in m.items && m.items[current.itemId] <= 0) {
      // Gone while the sheet was open: say so before the neighbour taps pay.
      if (!current.busy) {
        showError(errorText("SoldOut"));
        if (current.quote) current.quote = { ...current.quote, max_quantity: 0 };
        setPayable();
      }
    }
  });

  // Back from the cashier (?paid=<order>): the payment's notification may still be on its way (in a
  // rush, late), so the server asks the processor (查单) and answers at once; until the money shows,
  // it is asked again, less and less often.
  const paidId = new URLSearchParams(window.location.search).get("paid");
  if (paidId && /^\d+$/.test(paidId)) {
    const banner = root.querySelector("[data-testid=checkout-paid]");
    const bannerText = root.querySelector("[data-testid=checkout-paid-text]");
    root.querySelector("[data-testid=checkout-view-order]").href = `/orders/${paidId}`;
    bannerText.textContent = text.paid_waiting;
    banner.hidden = false;
    let tries = 0;
    const check = async () => {
      tries += 1;
      const result = await postJSON(`/api/v1/orders/${paidId}/payments/confirm`, {}).catch(() => null);
      const status = result?.data?.order_status;
      if (status === "paid" || status === "completed") {
        bannerText.textContent = fill(text.paid, { id: paidId });
        banner.dataset.status = "paid";
        // The payment-success moment, for other modules on the page (the share poster).
        root.dispatchEvent(new CustomEvent("checkout:paid", { detail: { orderId: Number(paidId), order: result.data } }));
        return;
      }
      // 1, 2, 3, 4 s, then every 5 s: about two minutes in all.
      if (tries < 30) setTimeout(check, Math.min(tries, 5) * 1000);
    };
    check();
  }
}
