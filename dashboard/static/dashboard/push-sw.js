// The dashboard's service worker: shows the Web Push messages the server sends to this
// browser (docs/architecture.md, "Notifications"). The payload arrives decrypted by the
// browser: {title, body, data, delivery_id, urgent}.
"use strict";

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = {};
  }
  const data = message.data || {};
  event.waitUntil(
    self.registration.showNotification(message.title || "Rehab", {
      body: message.body || "",
      // One notification per delivery: a copy re-sent after a failure replaces the first.
      tag: message.delivery_id || undefined,
      // An urgent alert stays on screen until the clinician acts on it.
      requireInteraction: Boolean(message.urgent),
      data: data,
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  // Ids only ever arrive in `data`; the page itself checks who may see the alert.
  const target = /^[0-9a-f-]{36}$/.test(data.alert || "")
    ? "/dashboard/alerts/" + data.alert + "/"
    : "/dashboard/alerts/";
  event.waitUntil(self.clients.openWindow(target));
});
