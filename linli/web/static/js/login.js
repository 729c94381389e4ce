// Login page: "获取验证码" asks the API for a code and counts down before another may be sent.
// Without this module the button still works: it submits the form with action=send_code.

const form = document.getElementById("login-form");

if (form) {
  const phone = form.querySelector("#phone");
  const code = form.querySelector("#code");
  const button = form.querySelector("#send-code");
  const status = form.querySelector("#login-status");
  const text = form.dataset;
  const PHONE = /^1[3-9][0-9]{9}$/;
  let timer = null;

  // Enter in the code field must log in, not ask for another code.
  button.type = "button";

  const say = (message, kind) => {
    status.textContent = message;
    status.dataset.kind = kind || "";
  };

  const countdown = (seconds) => {
    clearInterval(timer);
    let left = seconds;
    button.disabled = true;
    const tick = () => {
      if (left <= 0) {
        clearInterval(timer);
        button.disabled = false;
        button.textContent = text.send;
        return;
      }
      button.textContent = text.resend.replace("{seconds}", left);
      left -= 1;
    };
    tick();
    timer = setInterval(tick, 1000);
  };

  button.addEventListener("click", async () => {
    const value = phone.value.replace(/[\s-]/g, "").replace(/^\+86/, "");
    if (!PHONE.test(value)) {
      say(text.badPhone, "error");
      phone.focus();
      return;
    }
    button.disabled = true;
    try {
      const response = await fetch("/api/v1/auth/codes", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ phone: value }),
      });
      if (response.ok) {
        say(text.sent, "ok");
        countdown(60);
        code.focus();
        return;
      }
      if (response.status === 429) {
        const wait = parseInt(response.headers.get("Retry-After") || "60", 10);
        say(text.tooMany.replace("{seconds}", wait), "error");
        countdown(wait);
        return;
      }
      const body = await response.json().catch(() => ({}));
      say(response.status === 422 ? text.badPhone : body.detail || text.failed, "error");
    } catch (error) {
      say(text.failed, "error");
    }
    button.disabled = false;
  });

  const initial = parseInt(text.cooldown || "0", 10);
  if (initial > 0) countdown(initial);
}
