// The leader's verifier (groupbuy/leader.html): type the buyer's 6-digit code, or scan its QR with the
// camera where the browser has BarcodeDetector (typed otherwise). Partial pickup: the units field hands
// over only that many. Every check is the server's (POST /api/v1/leader/pickups/verify).
import { postJSON } from "../live/channel.js";

const box = document.getElementById("gb-verify");

if (box) {
  const text = JSON.parse(box.dataset.text || "{}");
  const pointId = Number(box.dataset.pointId);
  const form = box.querySelector("[data-testid=gb-verify-form]");
  const codeInput = form.elements.code;
  const unitsInput = form.elements.units;
  const result = box.querySelector("[data-testid=gb-result]");
  const video = box.querySelector("[data-testid=gb-camera]");
  const fill = (template, values) =>
    Object.entries(values).reduce((s, [k, v]) => s.split(`{${k}}`).join(String(v)), template || "");

  const show = (ok, message) => {
    result.hidden = false;
    result.className = `gb-result ${ok ? "is-ok" : "is-error"}`;
    result.textContent = message;
  };

  const verify = async (code) => {
    const body = { code, pickup_point_id: pointId };
    if (unitsInput.value) body.units = Number(unitsInput.value);
    const response = await postJSON("/api/v1/leader/pickups/verify", body);
    if (!response.ok) return show(false, `${text.error}:${response.data?.detail || response.status}`);
    const d = response.data;
    const parts = [fill(text.ok, { buyer: d.buyer, units: d.units_now })];
    if (d.units_left) parts.push(fill(text.partial, { left: d.units_left }));
    if (d.fee_collected_fen) parts.push(fill(text.fee, { amount: `¥${(d.fee_collected_fen / 100).toFixed(2)}` }));
    else if (d.fee_status === "paid_online") parts.push(text.fee_online);
    show(true, parts.join(" · "));
    codeInput.value = "";
    unitsInput.value = "";
    const row = document.querySelector(`[data-order-id="${d.order_id}"] [data-testid=gb-row-state]`);
    if (row) row.textContent = d.completed ? "✓" : `${d.units_picked}/${d.units_picked + d.units_left}`;
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    verify(codeInput.value.trim());
  });

  box.querySelector("[data-testid=gb-scan]").addEventListener("click", async () => {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return show(false, text.no_camera);
    try {
      const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      const stop = () => {
        stream.getTracks().forEach((track) => track.stop());
        video.hidden = true;
      };
      const look = async () => {
        const codes = await detector.detect(video).catch(() => []);
        const found = codes.map((c) => c.rawValue).find((v) => /^\d{6}$/.test(v));
        if (found) {
          stop();
          codeInput.value = found;
          return verify(found);
        }
        requestAnimationFrame(look);
      };
      look();
    } catch {
      show(false, text.no_camera);
    }
  });
}
