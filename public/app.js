/* WA Gateway portal: progressive enhancements only. Everything works without this file. */
(function () {
  "use strict";

  var COPIED_MS = 2000;

  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.top = "0";
    ta.style.left = "-9999px";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    ta.setSelectionRange(0, text.length);
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(ta);
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext !== false && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).then(
        function () { return true; },
        function () { return fallbackCopy(text); }
      );
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function textOf(el) {
    if (!el) return "";
    if ("value" in el && typeof el.value === "string" && el.tagName !== "BUTTON") return el.value;
    return el.textContent || "";
  }

  function flash(button, ok) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = ok ? "Copied" : "Copy failed";
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () {
      button.textContent = button.dataset.label;
    }, COPIED_MS);
  }

  function selectTarget(el) {
    if (el && typeof el.select === "function") {
      el.focus();
      el.select();
    }
  }

  // Copy buttons for one-time secrets: <button class="copy-button" data-copy-target="#id" hidden>
  function initCopyButtons() {
    var buttons = document.querySelectorAll("button.copy-button[data-copy-target]");
    Array.prototype.forEach.call(buttons, function (button) {
      var target;
      try {
        target = document.querySelector(button.getAttribute("data-copy-target"));
      } catch (e) {
        target = null;
      }
      if (!target) return;
      if (!button.getAttribute("type")) button.setAttribute("type", "button");
      button.removeAttribute("hidden");
      button.addEventListener("click", function (ev) {
        ev.preventDefault();
        copyText(textOf(target)).then(function (ok) {
          if (!ok) selectTarget(target);
          flash(button, ok);
        });
      });
    });

    // Clicking a read-only secret selects it all, which helps manual copying too.
    Array.prototype.forEach.call(document.querySelectorAll("input.secret-value"), function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
  }

  // Copy buttons for docs code blocks: <div class="code-block"><pre>...</pre></div>
  function initCodeBlocks() {
    var blocks = document.querySelectorAll("div.code-block");
    Array.prototype.forEach.call(blocks, function (block) {
      var pre = block.querySelector("pre");
      if (!pre || block.querySelector(".code-copy")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button code-copy";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy code to clipboard");
      button.addEventListener("click", function () {
        var text = (pre.textContent || "").replace(/\n$/, "");
        copyText(text).then(function (ok) { flash(button, ok); });
      });
      block.appendChild(button);
      block.classList.add("has-copy");
    });
  }

  // data-auto-refresh="N": reload after N seconds unless a <meta http-equiv="refresh"> already does it.
  function initAutoRefresh() {
    var metas = document.querySelectorAll("meta[http-equiv]");
    for (var i = 0; i < metas.length; i++) {
      if ((metas[i].getAttribute("http-equiv") || "").toLowerCase() === "refresh") return;
    }
    var el = document.querySelector("[data-auto-refresh]");
    if (!el) return;
    var seconds = parseInt(el.getAttribute("data-auto-refresh"), 10);
    if (!(seconds > 0)) return;
    setTimeout(function () {
      window.location.reload();
    }, seconds * 1000);
  }

  function init() {
    initCopyButtons();
    initCodeBlocks();
    initAutoRefresh();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
