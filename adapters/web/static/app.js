// PhotoDetective's page, made nicer where JavaScript runs; everything also works without it.
//
// Upload page: drag-and-drop, a size check before sending, an upload with a progress bar, then
// straight to the result. Result pages: poll the status document until the analysis is done, then
// reload; on a done page draw the boxes over the prepared photo, highlight the boxes of a label (or
// object, face, line of text) when it is hovered, focused or tapped, switch layers off and on, and
// reveal a photo blurred by a content warning. No framework, no build step: the server serves this
// file as it is (strict CSP: no inline script or style, so styles are set through element.style).
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  const PENDING = new Set(["queued", "analysing"]);
  const STATUS_WORDS = {
    queued: "Queued: waiting for a worker.",
    analysing: "Analysing the photo…",
    done: "Done.",
    failed: "The photo could not be analysed.",
  };
  // Poll every 2 s for the first half minute, then back off to at most 30 s; stop after 15 minutes.
  const POLL_FIRST_MS = 2000;
  const POLL_STEADY_FOR_MS = 30000;
  const POLL_MAX_MS = 30000;
  const POLL_GIVE_UP_MS = 15 * 60 * 1000;

  document.documentElement.classList.add("js");

  // Decimal megabytes (1 MB = 1,000,000 bytes), worded as the server words them (bot/notices.py):
  // one decimal, ".0" dropped, so the page and its refusals never disagree about a size.
  function megabytes(bytes) {
    return (bytes / 1000000).toFixed(1).replace(/\.0$/, "");
  }

  function say(box, messages) {
    // textContent only: file names come from the user's disk and are never parsed as HTML.
    box.replaceChildren(
      ...messages.map((message) => {
        const p = document.createElement("p");
        p.textContent = message;
        return p;
      }),
    );
    box.hidden = messages.length === 0;
  }

  // -- the upload page --------------------------------------------------------------------

  function uploadPage(form) {
    const input = $("#photo-input", form);
    const zone = $("#drop-zone", form);
    const progress = $("#upload-progress");
    const errors = $("#upload-error");
    const button = $("#upload-button", form);
    const limit = $("#size-limit");
    const maxBytes = Number(limit?.dataset.maxBytes) || 0;
    const maxFiles = Number(limit?.dataset.maxFiles) || 0;
    const token = $('input[name="csrf_token"]', form)?.value ?? "";
    let chosen = [];

    const chosenList = document.createElement("ul");
    chosenList.id = "chosen";
    chosenList.hidden = true;
    zone.append(chosenList);

    function problems(files) {
      const found = [];
      if (files.length === 0) found.push("Choose a photo to upload first.");
      if (maxFiles && files.length > maxFiles) {
        found.push(`That is ${files.length} photos; up to ${maxFiles} can be sent at once.`);
      }
      for (const file of files) {
        if (file.type && !file.type.startsWith("image/")) {
          found.push(`${file.name} is not a photo (${file.type}).`);
        } else if (maxBytes && file.size > maxBytes) {
          found.push(
            `${file.name} is ${megabytes(file.size)} MB; the limit is ${megabytes(maxBytes)} MB per photo. ` +
              "Try a smaller copy (most phones can share a reduced size).",
          );
        }
      }
      return found;
    }

    function choose(files) {
      chosen = Array.from(files);
      chosenList.replaceChildren(
        ...chosen.map((file) => {
          const li = document.createElement("li");
          li.textContent = `${file.name} (${megabytes(file.size)} MB)`;
          return li;
        }),
      );
      chosenList.hidden = chosen.length === 0;
      say(errors, chosen.length ? problems(chosen) : []);
    }

    input.addEventListener("change", () => choose(input.files));

    for (const name of ["dragenter", "dragover"]) {
      zone.addEventListener(name, (event) => {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    }
    for (const name of ["dragleave", "dragend", "drop"]) {
      zone.addEventListener(name, () => zone.classList.remove("dragging"));
    }
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      const files = event.dataTransfer?.files;
      if (!files || files.length === 0) return;
      try {
        input.files = files; // keeps the input and the form in step (and `required` satisfied)
      } catch {
        // Older browsers cannot assign a FileList; the upload below sends `chosen` anyway.
      }
      choose(files);
    });

    function finish(busy) {
      button.disabled = busy;
      form.classList.toggle("busy", busy);
      if (!busy) progress.hidden = true;
    }

    function answered(xhr) {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 202 && body && Array.isArray(body.results) && body.results.length) {
        const refused = Array.isArray(body.refused) ? body.refused : [];
        if (refused.length === 0) {
          window.location.assign(body.results.length === 1 ? body.results[0].url : "/results");
          return;
        }
        finish(false);
        say(
          errors,
          refused.map((item) => (item.name ? `${item.name}: ${item.message}` : item.message)),
        );
        const link = document.createElement("a");
        link.href = "/results";
        link.id = "uploaded-link";
        link.textContent = `${body.results.length} accepted: see the results`;
        const p = document.createElement("p");
        p.append(link);
        errors.append(p);
        return;
      }
      finish(false);
      const error = body && body.error ? body.error : null;
      let message = error?.message || `The upload failed (HTTP ${xhr.status}). Try again.`;
      const wait = Number(error?.retry_after || xhr.getResponseHeader("Retry-After"));
      if (xhr.status === 429 && wait > 0 && !/\d/.test(message)) {
        message += ` Try again in ${wait} s.`;
      }
      say(errors, [message]);
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const files = chosen.length ? chosen : Array.from(input.files);
      const found = problems(files);
      if (found.length) {
        say(errors, found);
        return;
      }
      say(errors, []);
      // The token first: the server reads the body as a stream and checks it before any photo.
      const data = new FormData();
      data.append("csrf_token", token);
      for (const file of files) data.append("photo", file, file.name);

      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", token);
      progress.removeAttribute("value"); // indeterminate until the first progress event
      progress.hidden = false;
      finish(true);
      progress.hidden = false;
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable && e.total > 0) progress.value = Math.round((100 * e.loaded) / e.total);
      });
      xhr.addEventListener("load", () => answered(xhr));
      xhr.addEventListener("error", () => {
        finish(false);
        say(errors, ["The upload did not get through: check the connection and try again."]);
      });
      xhr.addEventListener("timeout", () => {
        finish(false);
        say(errors, ["The upload took too long; try again, perhaps with fewer or smaller photos."]);
      });
      xhr.send(data);
    });
  }

  // -- waiting for results ----------------------------------------------------------------

  // Calls `check` (which returns true when nothing is pending any more) on a backing-off timer.
  function poll(check, onGiveUp) {
    const started = Date.now();
    let delay = POLL_FIRST_MS;
    const next = () => {
      const waited = Date.now() - started;
      if (waited > POLL_GIVE_UP_MS) {
        onGiveUp();
        return;
      }
      if (waited > POLL_STEADY_FOR_MS) delay = Math.min(POLL_MAX_MS, Math.round(delay * 1.5));
      window.setTimeout(run, delay);
    };
    const run = async () => {
      let finished = false;
      try {
        finished = await check();
      } catch {
        delay = Math.min(POLL_MAX_MS, delay * 2); // offline or server trouble: wait longer
      }
      if (!finished) next();
    };
    next();
  }

  async function statusOf(url) {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 404) return { status: "gone" };
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  function resultWaiting(main) {
    const statusLine = $("#status", main);
    poll(
      async () => {
        const doc = await statusOf(main.dataset.statusUrl);
        if (doc.status === "gone") {
          statusLine.textContent = "This result is gone (it was deleted or has expired).";
          return true;
        }
        if (!PENDING.has(doc.status)) {
          statusLine.textContent = STATUS_WORDS[doc.status] || doc.status;
          window.location.reload();
          return true;
        }
        if (doc.status !== main.dataset.status) {
          main.dataset.status = doc.status;
          statusLine.textContent = STATUS_WORDS[doc.status] || doc.status;
        }
        return false;
      },
      () => {
        statusLine.textContent =
          "Still not finished after a long wait; reload the page later to check again.";
      },
    );
  }

  function resultsListWaiting(list) {
    poll(
      async () => {
        const items = $$(".result-item", list).filter((li) => PENDING.has(li.dataset.status));
        for (const li of items) {
          const doc = await statusOf(`/results/${encodeURIComponent(li.dataset.resultId)}.json`);
          const status = doc.status === "gone" ? "deleted" : doc.status;
          li.dataset.status = status;
          const word = $(".status", li);
          if (word) word.textContent = status;
        }
        return !$$(".result-item", list).some((li) => PENDING.has(li.dataset.status));
      },
      () => {},
    );
  }

  // -- a done result: boxes, highlights, layers, the content warning ---------------------------

  function resultDone(main, figure) {
    const overlay = $("#overlay", figure);
    const annotated = $("#annotated", figure);
    if (overlay) {
      const boxes = $$(".box", overlay);
      for (const box of boxes) {
        const ratio = (name) => Math.min(1, Math.max(0, Number(box.dataset[name]) || 0));
        box.style.left = `${ratio("left") * 100}%`;
        box.style.top = `${ratio("top") * 100}%`;
        box.style.width = `${ratio("width") * 100}%`;
        box.style.height = `${ratio("height") * 100}%`;
        if (box.dataset.name) box.title = box.dataset.name;
      }
      overlay.hidden = false;
      if (annotated) annotated.hidden = true; // the drawn boxes would double the live ones
      figure.classList.add("interactive");
      itemsAndBoxes(main, boxes);
    }

    for (const toggle of $$(".layer-toggle", figure)) {
      const apply = () => {
        for (const box of $$(`.box[data-kind="${toggle.dataset.kind}"]`, figure)) {
          box.classList.toggle("layer-off", !toggle.checked);
        }
      };
      toggle.addEventListener("change", apply);
      apply(); // a reload may keep the checkbox state
    }

    const reveal = $("#reveal", figure);
    if (reveal) {
      reveal.addEventListener("click", () => {
        figure.classList.remove("blurred");
        reveal.hidden = true;
        figure.setAttribute("tabindex", "-1");
        figure.focus();
      });
    }
  }

  function itemsAndBoxes(main, boxes) {
    const byId = new Map(boxes.map((box) => [box.dataset.boxId, box]));
    const items = $$("[data-box-ids]", main).filter((item) => !item.classList.contains("box"));
    const idsOf = (item) => (item.dataset.boxIds || "").split(/\s+/).filter(Boolean);
    const pinned = new Set();

    function paint() {
      // An item is lit while hovered, keyboard-focused or pinned (tapped); its boxes light with it.
      const lit = new Set();
      for (const item of items) {
        const on = pinned.has(item) || item.matches(":hover") || item.matches(":focus-visible");
        item.classList.toggle("highlight", on);
        if (on) for (const id of idsOf(item)) lit.add(id);
      }
      for (const [id, box] of byId) box.classList.toggle("highlight", lit.has(id));
      main.classList.toggle("highlighting", lit.size > 0);
    }

    for (const item of items) {
      if (idsOf(item).length === 0) continue;
      item.classList.add("has-boxes");
      if (!item.hasAttribute("tabindex")) item.tabIndex = 0;
      item.setAttribute("aria-pressed", "false");
      item.setAttribute("role", "button");
      const pin = () => {
        if (pinned.has(item)) pinned.delete(item);
        else pinned.add(item);
        item.setAttribute("aria-pressed", String(pinned.has(item)));
        paint();
      };
      item.addEventListener("mouseenter", paint);
      item.addEventListener("mouseleave", () => window.requestAnimationFrame(paint));
      item.addEventListener("focus", paint);
      item.addEventListener("blur", () => window.requestAnimationFrame(paint));
      item.addEventListener("click", pin);
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          pin();
        } else if (event.key === "Escape") {
          pinned.clear();
          for (const other of items) other.setAttribute("aria-pressed", "false");
          paint();
        }
      });
    }

    // Pointing at a box lights the items that name it (and so the box itself).
    for (const [id, box] of byId) {
      const named = items.filter((item) => idsOf(item).includes(id));
      box.addEventListener("mouseenter", () => {
        for (const item of named) item.classList.add("highlight");
        box.classList.add("highlight");
      });
      box.addEventListener("mouseleave", paint);
    }
  }

  // -- start ------------------------------------------------------------------------------

  function start() {
    const form = $("#upload-form");
    if (form) uploadPage(form);

    const main = $("main#result");
    if (main) {
      if (PENDING.has(main.dataset.status) && main.dataset.statusUrl) resultWaiting(main);
      const figure = $("#photo-figure", main);
      if (main.dataset.status === "done" && figure) resultDone(main, figure);
    }

    const list = $("#result-list");
    if (list && $$(".result-item", list).some((li) => PENDING.has(li.dataset.status))) {
      resultsListWaiting(list);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
