// The status page's only script: refresh the sections in place, redrive dead deliveries.
// The server renders (and escapes) all data; this script inserts that HTML and otherwise sets
// only textContent, so nothing from Salesforce or the config is ever parsed as markup here.
"use strict";
(() => {
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "sftriggerd.admin_token";
  const main = document.getElementById("status");
  const note = document.getElementById("refresh-note");
  const message = document.getElementById("message");
  const tokenInput = document.getElementById("token");
  let lastGood = new Date();
  let timer = 0;

  function say(text, kind) {
    message.textContent = text;
    message.className = kind;
  }

  // Replacing the sections would drop keyboard focus from a Redrive button; put it back.
  function swapSections(html) {
    const focused = document.activeElement?.dataset?.redrive;
    main.innerHTML = html;
    if (focused) main.querySelector(`button[data-redrive="${CSS.escape(focused)}"]`)?.focus();
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const response = await fetch("?fragment=1", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      swapSections(await response.text());
      lastGood = new Date();
      note.textContent = `Updated ${lastGood.toLocaleTimeString()}`;
      note.classList.remove("stale");
    } catch (err) {
      note.textContent = `Cannot refresh (${err.message}); showing ${lastGood.toLocaleTimeString()}`;
      note.classList.add("stale");
    }
    // A hidden tab asks nothing; it refreshes again when it becomes visible.
    if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
  }

  async function redrive(button) {
    const id = button.dataset.redrive;
    const token = sessionStorage.getItem(TOKEN_KEY);
    // A JSON body: the server refuses mutations of any other content type (cross-site forms).
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    button.disabled = true;
    let response;
    try {
      response = await fetch(`api/deliveries/${encodeURIComponent(id)}/redrive`, {
        method: "POST",
        headers,
        body: "{}",
      });
    } catch (err) {
      button.disabled = false;
      say(`Redrive of delivery ${id} failed: ${err.message}`, "bad");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 202) {
      say(`Delivery ${id} redriven: it is pending and will be sent shortly.`, "ok");
    } else if (response.status === 401) {
      say(
        token
          ? "The admin token was refused. Enter the right one above and try again."
          : "Redrive needs the admin token: enter it above, then try again.",
        "bad",
      );
      tokenInput?.focus();
    } else if (response.status === 403) {
      say(`Redrive refused: ${body.error ?? "this server allows no mutations"}.`, "bad");
    } else if (response.status === 409) {
      say(`Delivery ${id} was not redriven: ${body.error ?? "it is no longer dead"}.`, "warn");
    } else {
      say(`Redrive of delivery ${id} failed: HTTP ${response.status} ${body.error ?? ""}`, "bad");
    }
    await refresh();
  }

  main.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-redrive]");
    if (button && !button.disabled) redrive(button);
  });

  // The token lives in this tab's sessionStorage only: never in the page, a cookie or a URL.
  const form = document.getElementById("token-form");
  if (form) {
    const tokenState = document.getElementById("token-state");
    const showTokenState = () => {
      tokenState.textContent = sessionStorage.getItem(TOKEN_KEY) ? "Token set for this tab." : "";
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = tokenInput.value.trim();
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
      tokenInput.value = "";
      showTokenState();
      say(value ? "Admin token kept for this tab." : "Admin token forgotten.", "ok");
    });
    showTokenState();
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  timer = setTimeout(refresh, REFRESH_MS);
})();
