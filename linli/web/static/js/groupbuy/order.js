// The group-order panel on the neighbour's order page (groupbuy/_order_panel.html): progress, fulfilment
// steps, the pickup code and the delivery fee, kept current by polling the order's status every few seconds
// (the page has no room socket); "已送达自提点,凭取货码取货" appears as soon as staff confirm the arrival, and
// a delivery fee paid at the cashier shows as paid once the provider's notification is in.
const panel = document.getElementById("gb-order-panel");

if (panel) {
  const orderId = panel.dataset.orderId;
  let last = "";
  const refresh = async () => {
    const response = await fetch(`/api/v1/groupbuy/orders/${orderId}`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    const key = JSON.stringify([data.message, data.code, data.units_picked, data.steps.map((s) => s.done), data.fee_status]);
    if (key === last) return;
    const hadCode = panel.querySelector("[data-testid=gb-code]");
    const fee = panel.querySelector("[data-testid=gb-fee]");
    const feeChanged = (fee?.dataset.feeStatus || null) !== (data.fee_status || null) && (fee || data.fee_status !== "waived");
    // The fee as rendered is compared at once: its notification may land between the render and this poll.
    if (feeChanged || (last && (Boolean(data.code) !== Boolean(hadCode) || (hadCode && hadCode.textContent !== data.code)))) {
      // The code appeared or went away (refund, pickup), or the fee was paid: the page renders it anew.
      window.location.replace(window.location.pathname);
      return;
    }
    last = key;
    panel.querySelector("[data-testid=gb-order-message]").textContent = data.message;
    for (const step of data.steps) {
      panel.querySelector(`[data-step="${step.key}"]`)?.classList.toggle("is-done", step.done);
    }
    const units = panel.querySelector("[data-testid=gb-order-units]");
    if (units && data.group) units.textContent = data.units_text;
    const bar = panel.querySelector("[data-testid=gb-order-bar] span");
    if (bar && data.group) bar.style.width = `${Math.min(100, Math.floor((data.group.units * 100) / data.group.threshold))}%`;
    const picked = panel.querySelector("[data-testid=gb-picked]");
    if (picked) picked.textContent = picked.textContent.replace(/\d+\/(\d+)/, `${data.units_picked}/$1`);
  };
  refresh();
  setInterval(refresh, 4000);
}
