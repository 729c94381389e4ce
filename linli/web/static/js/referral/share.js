// The share sheet (referral/_share_sheet.html). In the room it opens the moment checkout.js announces the
// payment (`checkout:paid` on #live-room) with the poster already loading; on the order page it shows at
// once. 保存图片 downloads the poster, 分享 uses the Web Share API (with the image where the browser can
// share files, else the link), falling back to copying the link. Each action is a share event.
const sheet = document.querySelector("[data-referral-sheet]");

if (sheet) {
  const text = JSON.parse(sheet.dataset.text || "{}");
  const $ = (id) => sheet.querySelector(`[data-testid="${id}"]`);
  const img = $("share-poster");
  const lineBox = $("share-line");
  const errorBox = $("share-error");
  const saveLink = $("share-save");
  let kit = null;
  let format = "moments";
  let line = "";
  const shownFor = new Set();
  // When the sheet was asked for (the payment confirmed): the first poster's load is timed from it.
  let openedAt = null;

  const post = (kind, channel) =>
    fetch(`/api/v1/referral/orders/${kit.order_id}/share-events`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(channel ? { kind, format, channel } : { kind, format }),
    }).catch(() => null);

  const posterUrl = () => {
    const params = new URLSearchParams({ format });
    if (line && line !== kit.default_line) params.set("line", line);
    return `/api/v1/referral/orders/${kit.order_id}/poster.jpg?${params}`;
  };

  const showError = (message) => {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  };

  const paint = () => {
    const url = posterUrl();
    $("share-loading").hidden = false;
    saveLink.href = url;
    saveLink.setAttribute("download", `linli-${format}-${kit.order_id}.jpg`);
    img.dataset.format = format;
    img.src = url;
  };

  img.addEventListener("load", () => {
    $("share-loading").hidden = true;
    img.hidden = false;
    showError("");
    if (openedAt !== null) {
      sheet.dataset.shownMs = String(Math.round(performance.now() - openedAt));
      openedAt = null;
    }
    const key = posterUrl();
    if (!shownFor.has(key)) {
      shownFor.add(key);
      post("shown");
    }
  });
  img.addEventListener("error", async () => {
    $("share-loading").hidden = true;
    // The image failed: ask once more as JSON to learn why (a refused word, a too-long line).
    const response = await fetch(img.src, { credentials: "same-origin", headers: { Accept: "application/json" } }).catch(() => null);
    const data = response ? await response.json().catch(() => null) : null;
    showError(data?.error === "InvalidShareLine" ? text.error_line : text.error_other);
  });

  const open = async (orderId) => {
    openedAt = performance.now();
    // The default poster's URL needs only the order: it starts loading while the kit is fetched.
    kit = { order_id: orderId, default_line: "" };
    line = "";
    sheet.hidden = false;
    sheet.dataset.orderId = String(orderId);
    paint();
    const response = await fetch(`/api/v1/referral/orders/${orderId}/share`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).catch(() => null);
    if (!response || !response.ok) {
      if (response && response.status === 404) sheet.hidden = true;
      return;
    }
    kit = await response.json();
    line = kit.default_line;
    lineBox.value = line;
    $("share-lead").textContent = (text.lead || "").split("{code}").join(kit.code);
    $("share-link").textContent = kit.share_url;
  };

  sheet.querySelectorAll("[data-format]").forEach((button) =>
    button.addEventListener("click", () => {
      format = button.dataset.format;
      sheet.querySelectorAll("[data-format]").forEach((b) => b.classList.toggle("active", b === button));
      paint();
    }),
  );

  $("share-update").addEventListener("click", () => {
    line = lineBox.value.trim() || kit.default_line;
    paint();
  });

  saveLink.addEventListener("click", () => post("saved"));

  const copyLink = async () => {
    try {
      await navigator.clipboard.writeText(kit.share_url);
    } catch {
      // Clipboard refused (http, permissions): the link stays on screen to copy by hand.
    }
    $("share-copied").hidden = false;
  };
  $("share-copy").addEventListener("click", async () => {
    await copyLink();
    post("shared", "link");
  });

  $("share-share").addEventListener("click", async () => {
    const shareText = `${line} ${kit.share_url}`;
    if (navigator.share) {
      try {
        const blob = await (await fetch(img.src, { credentials: "same-origin" })).blob();
        const file = new File([blob], `linli-${format}.jpg`, { type: "image/jpeg" });
        const data = navigator.canShare && navigator.canShare({ files: [file] })
          ? { files: [file], text: shareText }
          : { text: shareText, url: kit.share_url };
        await navigator.share(data);
        post("shared", "system");
        return;
      } catch (error) {
        if (error && error.name === "AbortError") return;
      }
    }
    await copyLink();
    post("shared", "link");
  });

  const close = $("share-close");
  if (close) close.addEventListener("click", () => { sheet.hidden = true; });

  if (sheet.dataset.mode === "order" && sheet.dataset.orderId) {
    open(Number(sheet.dataset.orderId));
  } else {
    const root = document.getElementById("live-room");
    if (root) {
      root.addEventListener("checkout:paid", (event) => open(event.detail.orderId));
      // Should the payment have been confirmed before this module ran, the banner says so already.
      const banner = root.querySelector("[data-testid=checkout-paid]");
      const paidId = new URLSearchParams(window.location.search).get("paid");
      if (banner && banner.dataset.status === "paid" && paidId && /^\d+$/.test(paidId)) open(Number(paidId));
    }
  }
}
