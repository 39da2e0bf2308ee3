/* The website chat widget of carewell: a launcher button and a chat panel that talk to the
 * service's session API (/widget/...). Add to a page:
 *   <script src="https://<service>/widget.js" data-site="<site key>" async></script>
 * Everything the service or the visitor writes is shown as text (textContent), never as HTML.
 * The panel lives in a shadow root, so the page's styles and the widget's do not mix. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__carewellWidget) { return; }
  window.__carewellWidget = true;
  var site = script.getAttribute("data-site");
  var base = new URL(script.src, document.baseURI).origin;
  var storeKey = "carewell-widget:" + site;
  var settings = null, session = null, seen = 0, counter = 0, polling = false, open = false;

  function api(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (session) { headers.Authorization = "Bearer " + session.token; }
    return fetch(base + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        return r.text().then(function (t) {
          var data = null;
          try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
          return { status: r.status, data: data };
        });
      });
  }

  var host = document.createElement("div");
  host.setAttribute("data-carewell-widget", "");
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  root.appendChild(style);

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  var launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "panel" }, "Chat");
  var panel = el("section", { id: "panel", class: "panel", role: "dialog", "aria-modal": "false", hidden: "" });
  var header = el("header", {});
  var title = el("h2", { id: "title" }, "Chat");
  var close = el("button", { type: "button", class: "close", "aria-label": "Close the chat" }, "\u00d7");
  var log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-labelledby": "title" });
  var typing = el("p", { class: "typing", hidden: "", "aria-live": "polite" }, "Typing\u2026");
  var form = el("form", { class: "compose" });
  var label = el("label", { for: "text", class: "visually-hidden" }, "Your message");
  var input = el("textarea", { id: "text", rows: "1", maxlength: "2000", autocomplete: "off" });
  var send = el("button", { type: "submit" }, "Send");
  var restart = el("button", { type: "button", class: "restart" }, "Start again");
  var onWhatsApp = el("button", { type: "button", class: "restart", hidden: "" }, "Continue on WhatsApp");
  header.appendChild(title); header.appendChild(close);
  form.appendChild(label); form.appendChild(input); form.appendChild(send);
  panel.setAttribute("aria-labelledby", "title");
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(typing); panel.appendChild(form); panel.appendChild(onWhatsApp); panel.appendChild(restart);
  root.appendChild(launcher); root.appendChild(panel);

  function paint(s) {
    style.textContent =
      ":host{all:initial}*{box-sizing:border-box;font:15px/1.4 system-ui,sans-serif}" +
      ".launcher{position:fixed;bottom:20px;inset-inline-end:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;cursor:pointer;background:" + s.accent + ";color:" + s.on_accent + "}" +
      ".panel{position:fixed;bottom:80px;inset-inline-end:20px;z-index:2147483000;width:min(360px,calc(100vw - 40px));height:min(520px,calc(100vh - 120px));display:flex;flex-direction:column;background:#fff;color:#1b1b1b;border:1px solid #c8ccc9;border-radius:12px;overflow:hidden;box-shadow:0 6px 24px rgba(0,0,0,.18)}" +
      ".panel[hidden]{display:none}header{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:" + s.accent + ";color:" + s.on_accent + "}" +
      "h2{margin:0;font-weight:600;font-size:16px}.close{border:0;background:transparent;color:inherit;font-size:22px;cursor:pointer}" +
      ".log{list-style:none;margin:0;padding:12px;flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:8px}" +
      ".bot,.me{max-width:85%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}" +
      ".bot{align-self:flex-start;background:#eef1ef}.me{align-self:flex-end;background:" + s.accent + ";color:" + s.on_accent + "}" +
      ".options{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}.options button{border:1px solid " + s.accent + ";background:#fff;color:#1b1b1b;border-radius:14px;padding:5px 10px;cursor:pointer;text-align:start}" +
      ".typing{margin:0 12px 6px;color:#555}.compose{display:flex;gap:6px;padding:8px;border-top:1px solid #e2e5e3}" +
      "textarea{flex:1;resize:none;border:1px solid #8a918d;border-radius:8px;padding:8px;color:#1b1b1b}" +
      ".compose button{border:0;border-radius:8px;padding:0 14px;background:" + s.accent + ";color:" + s.on_accent + ";cursor:pointer}" +
      ".restart{border:0;background:transparent;color:#3d4a44;text-decoration:underline;padding:0 0 8px;cursor:pointer}" +
      ":focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}" +
      ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";
  }

  function add(who, text, options) {
    var item = el("li", { class: who });
    item.appendChild(el("span", { class: "visually-hidden" }, who === "me" ? "You: " : (settings ? settings.title : "") + ": "));
    item.appendChild(document.createTextNode(text));
    if (options && options.length) {
      var group = el("div", { class: "options", role: "group", "aria-label": "Choices" });
      options.forEach(function (o) {
        var b = el("button", { type: "button" }, o.title);
        if (o.description) { b.setAttribute("title", o.description); b.setAttribute("aria-description", o.description); }
        b.addEventListener("click", function () { choose(o); });
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function remember() {
    if (settings && settings.keep_session && session) {
      try { localStorage.setItem(storeKey, JSON.stringify({ session: session.session, token: session.token })); } catch (e) { /* storage off */ }
    }
  }

  function forget() {
    try { localStorage.removeItem(storeKey); } catch (e) { /* storage off */ }
  }

  function begin() {
    return api("POST", "/widget/sessions", { site: site }).then(function (r) {
      if (r.status !== 201) { throw new Error("no session"); }
      session = { session: r.data.session, token: r.data.token };
      seen = 0;
      remember();
    });
  }

  function ensure() {
    if (session) { return Promise.resolve(); }
    return begin().then(poll);
  }

  function post(body, shown) {
    counter += 1;
    body.client_id = "c" + Date.now().toString(36) + "-" + counter;
    add("me", shown);
    typing.hidden = false;
    var attempt = function (n) {
      return ensure().then(function () { return api("POST", "/widget/sessions/" + session.session + "/messages", body); })
        .then(function (r) {
          if (r.status === 410 || r.status === 401) { session = null; forget(); if (n < 1) { return attempt(n + 1); } }
          if (r.status === 429) { typing.hidden = true; if (body.text && !input.value) { input.value = body.text; } add("bot", "You're writing faster than we can answer; please wait a moment and send it again."); }
          else if (r.status >= 400) { typing.hidden = true; add("bot", (r.data && r.data.error && r.data.error.message) || "That did not go through."); }
        })
        .catch(function () { if (n < 3) { return new Promise(function (ok) { setTimeout(ok, 1000 * (n + 1)); }).then(function () { return attempt(n + 1); }); } typing.hidden = true; add("bot", "We can't reach the chat right now. Please try again."); });
    };
    return attempt(0);
  }

  function choose(o) { post({ choice: { id: o.id, title: o.title } }, o.title); }

  function poll() {
    if (polling || !session) { return; }
    polling = true;
    var current = session.session;
    api("GET", "/widget/sessions/" + current + "/replies?after=" + seen + "&wait=25").then(function (r) {
      polling = false;
      if (!session || session.session !== current) { return; }
      if (r.status === 410 || r.status === 401 || r.status === 404) { session = null; forget(); typing.hidden = true; return; }
      if (r.status === 200 && r.data) {
        r.data.replies.forEach(function (m) { seen = Math.max(seen, m.id); add("bot", m.text, m.options); });
        if (r.data.replies.length) { typing.hidden = true; }
      }
      setTimeout(poll, r.status === 200 ? 0 : 2000);
    }).catch(function () { polling = false; setTimeout(poll, 3000); });
  }

  function show(yes) {
    open = yes;
    panel.hidden = !yes;
    launcher.setAttribute("aria-expanded", yes ? "true" : "false");
    if (yes) { input.focus(); } else { launcher.focus(); }
  }

  launcher.addEventListener("click", function () { show(!open); });
  close.addEventListener("click", function () { show(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { show(false); } });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    post({ text: text }, text);
  });
  onWhatsApp.addEventListener("click", function () {
    // The window opens now (a browser allows it only in the click); the link follows.
    var opened = window.open("", "_blank");
    ensure().then(function () { return api("POST", "/widget/sessions/" + session.session + "/whatsapp"); })
      .then(function (r) {
        if (r.status !== 201) { if (opened) { opened.close(); } add("bot", "WhatsApp isn't available right now."); return; }
        add("bot", "Send the message WhatsApp opens with (code " + r.data.code + ") and we'll carry on there.");
        if (opened) { opened.location = r.data.link; } else { window.location.href = r.data.link; }
      })
      .catch(function () { if (opened) { opened.close(); } });
  });
  restart.addEventListener("click", function () {
    var old = session;
    session = null; forget();
    while (log.firstChild) { log.removeChild(log.firstChild); }
    if (old) { fetch(base + "/widget/sessions/" + old.session, { method: "DELETE", headers: { Authorization: "Bearer " + old.token } }).catch(function () {}); }
    if (settings) { add("bot", settings.greeting); }
    input.focus();
  });

  api("GET", "/widget/sites/" + encodeURIComponent(site)).then(function (r) {
    if (r.status !== 200) { return; }
    settings = r.data;
    paint(settings);
    host.setAttribute("dir", settings.direction);
    panel.setAttribute("dir", settings.direction);
    title.textContent = settings.title;
    launcher.textContent = settings.title;
    launcher.setAttribute("aria-label", "Chat with " + settings.title);
    add("bot", settings.greeting);
    onWhatsApp.hidden = !settings.whatsapp;
    if (settings.keep_session) {
      try {
        var kept = JSON.parse(localStorage.getItem(storeKey) || "null");
        if (kept && kept.session && kept.token) { session = kept; poll(); }
      } catch (e) { /* storage off */ }
    } else { forget(); }
    document.body.appendChild(host);
  });
})();
