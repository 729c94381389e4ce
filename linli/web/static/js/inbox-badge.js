// The unread-messages badge in the mobile tab bar: one small request per page view (only for a
// logged-in neighbour: the shell includes this script only then), refreshed when the tab comes back.
const badge = document.querySelector('[data-testid="inbox-badge"]');

async function refresh() {
  if (!badge) return;
  try {
    const response = await fetch("/api/v1/me/inbox/unread", { credentials: "same-origin" });
    if (!response.ok) return;
    const { unread } = await response.json();
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = !(unread > 0);
    badge.style.display = unread > 0 ? "inline-block" : "none";
    const label = badge.dataset.label || "";
    if (label) badge.setAttribute("aria-label", label.replace("{count}", String(unread)));
  } catch {
    // Offline or the server is restarting: keep the badge as it was.
  }
}

refresh();
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});
window.addEventListener("linli:inbox-changed", refresh);
