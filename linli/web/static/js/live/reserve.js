// The reserve (预约) button and count on an upcoming session's room page (live/_room_reserve.html).
const box = document.querySelector('[data-testid="reserve"]');

if (box) {
  const sessionId = box.dataset.sessionId;
  const text = JSON.parse(box.dataset.text || "{}");
  const countEl = box.querySelector('[data-testid="reserve-count"]');
  const button = box.querySelector('[data-testid="reserve-button"]');
  const errorEl = box.querySelector('[data-testid="reserve-error"]');
  const url = `/api/v1/sessions/${sessionId}/reservation`;
  let open = false;

  const show = (state) => {
    countEl.textContent = (text.count || "{count}").replace("{count}", String(state.count));
    open = Boolean(state.open);
    if (!button) return;
    button.dataset.reserved = state.reserved ? "true" : "false";
    button.textContent = state.reserved ? text.reserved : text.reserve;
    button.classList.toggle("btn-ghost", state.reserved);
    button.disabled = !open;
  };

  const call = async (method) => {
    errorEl.hidden = true;
    const response = await fetch(url, { method, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      errorEl.textContent = body.detail || text.error;
      errorEl.hidden = false;
      return;
    }
    show(body);
  };

  if (button) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await call(button.dataset.reserved === "true" ? "DELETE" : "PUT");
      } catch {
        errorEl.textContent = text.error;
        errorEl.hidden = false;
      } finally {
        button.disabled = !open;
      }
    });
  }
  call("GET").catch(() => {});
}
