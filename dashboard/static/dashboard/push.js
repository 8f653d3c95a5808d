// "Notify this browser": subscribes the dashboard's browser to Web Push and registers the
// subscription as one of the clinician's devices (POST /api/v1/me/devices/, with this
// session and its CSRF token). Loaded from our own static files: no inline script, so the
// Content-Security-Policy stays as strict as it is (docs/security.md).
"use strict";

(function () {
  const button = document.getElementById("push-toggle");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) {
    return;
  }

  function keyBytes(base64url) {
    const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") +
      "=".repeat((4 - (base64url.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // The worker's scope is its static folder, not the dashboard's pages, so
  // `navigator.serviceWorker.ready` (which waits for a worker controlling this page) would
  // never resolve: wait for this registration's own worker to be active instead.
  function activated(registration) {
    if (registration.active) {
      return Promise.resolve(registration);
    }
    const worker = registration.installing || registration.waiting;
    return new Promise((resolve) => {
      worker.addEventListener("statechange", () => {
        if (worker.state === "activated") {
          resolve(registration);
        }
      });
    });
  }

  async function publicKey() {
    const response = await fetch(button.dataset.keyUrl, { credentials: "same-origin" });
    return response.ok ? (await response.json()).public_key : null;
  }

  async function enable(key) {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      button.textContent = "Notifications blocked in this browser";
      return;
    }
    // Its scope is its own static folder: it serves no page, it only shows messages.
    const registration = await activated(
      await navigator.serviceWorker.register(button.dataset.sw)
    );
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(key),
    });
    const response = await fetch(button.dataset.devicesUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({
        platform: "web",
        subscription: subscription.toJSON(),
        locale: navigator.language || "",
        time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || "",
      }),
    });
    button.textContent = response.ok
      ? "This browser is notified"
      : "Could not turn notifications on";
    button.disabled = response.ok;
  }

  publicKey().then((key) => {
    if (!key) {
      return;
    }
    button.hidden = false;
    if (Notification.permission === "granted") {
      // Registering again replaces this session's subscription: cheap, and it keeps a
      // renewed subscription known to the server.
      enable(key).catch(() => undefined);
    }
    button.addEventListener("click", () => {
      enable(key).catch(() => {
        button.textContent = "Could not turn notifications on";
      });
    });
  });
})();
