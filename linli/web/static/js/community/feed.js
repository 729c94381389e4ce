// The community feed page (/c/{community}): likes, comments, guesses, taster tasks, pins, removals and
// the teaser's reservation button, all through the JSON API. Texts go in with textContent only.
const root = document.getElementById("community-feed");

if (root) {
  const text = JSON.parse(root.dataset.text || "{}");
  const errorEl = root.querySelector('[data-testid="feed-error"]');

  const showError = (message) => {
    errorEl.textContent = message || text.error;
    errorEl.hidden = false;
  };

  const api = async (method, url, body) => {
    errorEl.hidden = true;
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401) {
      window.location.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
      throw new Error("login");
    }
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(data.detail);
      throw new Error(data.error || "error");
    }
    return data;
  };

  const postOf = (el) => el.closest('[data-testid="feed-post"]');

  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const post = postOf(button);
    const postId = post && post.dataset.postId;
    button.disabled = true;
    try {
      if (button.dataset.action === "like") {
        const liked = button.dataset.liked === "true";
        const state = await api(liked ? "DELETE" : "PUT", `/api/v1/feed/posts/${postId}/like`);
        button.dataset.liked = state.liked ? "true" : "false";
        button.firstChild.textContent = state.liked ? "♥ " : "♡ ";
        button.querySelector('[data-testid="feed-like-count"]').textContent = String(state.like_count);
      } else if (button.dataset.action === "pin") {
        const pinned = button.dataset.pinned === "true";
        await api(pinned ? "DELETE" : "PUT", `/api/v1/feed/posts/${postId}/pin`);
        window.location.reload();
      } else if (button.dataset.action === "delete") {
        if (!window.confirm(text.confirm_delete)) return;
        await api("DELETE", `/api/v1/feed/posts/${postId}`);
        post.remove();
      } else if (button.dataset.action === "delete-comment") {
        await api("DELETE", `/api/v1/feed/comments/${button.dataset.commentId}`);
        button.closest("li").remove();
      }
    } catch {
      /* shown in the error line */
    } finally {
      button.disabled = false;
    }
  });

  root.querySelectorAll('[data-testid="feed-comment-form"]').forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const post = postOf(form);
      const input = form.elements.text;
      try {
        const comment = await api("POST", `/api/v1/feed/posts/${post.dataset.postId}/comments`, {
          text: input.value,
        });
        const li = document.createElement("li");
        const who = document.createElement("b");
        who.textContent = comment.author.name;
        li.append(who, document.createTextNode(`:${comment.text}`));
        post.querySelector('[data-testid="feed-comments"]').append(li);
        const count = post.querySelector('[data-testid="feed-comment-count"]');
        count.textContent = String(Number(count.textContent) + 1);
        input.value = "";
      } catch {
        /* shown */
      }
    });
  });

  root.querySelectorAll('[data-testid="feed-guess-form"]').forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = form.elements.text;
      try {
        const topic = await api("PUT", `/api/v1/feed/topics/${form.dataset.topicId}/guess`, { text: input.value });
        const mine = form.parentElement.querySelector('[data-testid="feed-my-guess"]');
        mine.textContent = (text.my_guess || "{text}").replace("{text}", topic.my_guess);
        mine.hidden = false;
        input.value = "";
      } catch {
        /* shown */
      }
    });
  });

  root.querySelectorAll('[data-testid="feed-task-form"]').forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", `/api/v1/feed/tasks/${form.dataset.taskId}/post`, { text: form.elements.text.value });
        window.location.reload();
      } catch {
        /* shown */
      }
    });
  });

  // Reservations are the live domain's (PUT/DELETE /api/v1/sessions/{id}/reservation).
  const reserveButtons = [...root.querySelectorAll('[data-testid="feed-reserve"]')];
  const showReservation = (sessionId, state) => {
    reserveButtons
      .filter((b) => b.dataset.sessionId === String(sessionId))
      .forEach((b) => {
        b.dataset.reserved = state.reserved ? "true" : "false";
        b.textContent = !state.open ? text.closed : state.reserved ? text.reserved : text.reserve;
        b.disabled = !state.open;
        b.classList.toggle("btn-ghost", state.reserved);
      });
    root.querySelectorAll(`[data-testid="feed-reserve-count"][data-session-id="${sessionId}"]`).forEach((el) => {
      el.textContent = (text.count || "{count}").replace("{count}", String(state.count));
    });
  };
  const sessions = new Set(reserveButtons.map((b) => b.dataset.sessionId));
  sessions.forEach((sessionId) => {
    api("GET", `/api/v1/sessions/${sessionId}/reservation`)
      .then((state) => showReservation(sessionId, state))
      .catch(() => {});
  });
  reserveButtons.forEach((button) => {
    button.addEventListener("click", async () => {
      const sessionId = button.dataset.sessionId;
      button.disabled = true;
      try {
        const method = button.dataset.reserved === "true" ? "DELETE" : "PUT";
        showReservation(sessionId, await api(method, `/api/v1/sessions/${sessionId}/reservation`));
      } catch {
        button.disabled = false;
      }
    });
  });
}
