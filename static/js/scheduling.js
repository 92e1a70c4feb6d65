// patientdesk: scheduling screens. No inline scripts (CSP); behaviour hangs off data attributes.
//  - links marked data-panel open in the side panel (#schedule-panel) through htmx;
//  - the calendar grid is one tab stop: arrow keys move between slots and appointments,
//    Enter opens one (a slot opens the booking panel, an appointment its panel);
//  - appointments drag onto an empty slot to move them (a POST with the CSRF header);
//  - a red line marks the current time on today's calendar;
//  - the check-in board's background poll waits while someone is typing on the board.
(function () {
  "use strict";

  const PANEL = "#schedule-panel";
  let panelIntro = null;
  let returnFocus = null;

  function panel() {
    const el = document.querySelector(PANEL);
    return el && !el.classList.contains("schedule-panel-page") ? el : null;
  }

  function csrfHeaders() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (error) {
      return {};
    }
  }

  // ---- the side panel ------------------------------------------------------------------------

  function openInPanel(url, opener) {
    const target = panel();
    if (!target || !window.htmx) {
      window.location.href = url;
      return;
    }
    returnFocus = opener || document.activeElement;
    window.htmx.ajax("GET", url, { target: PANEL, swap: "innerHTML" });
  }

  function closePanel() {
    const target = panel();
    if (!target) return;
    target.innerHTML = panelIntro || "";
    if (returnFocus && document.body.contains(returnFocus)) returnFocus.focus();
  }

  document.addEventListener("click", function (event) {
    const closer = event.target.closest("[data-panel-close]");
    if (closer) {
      event.preventDefault();
      if (panel()) closePanel();
      else window.history.back();
      return;
    }
    const link = event.target.closest("a[data-panel]");
    if (link && panel() && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      openInPanel(link.href, link);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && panel() && panel().contains(document.activeElement)) {
      event.preventDefault();
      closePanel();
    }
  });

  // Conflicts (409) and invalid input (422) come back as content to show, not as failures.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (!target) return;
    if (target.matches(PANEL)) {
      if (target.querySelector(".is-invalid")) return; // app.js focuses the first error
      const focus = target.querySelector("[autofocus]") || target.querySelector("#conflict") ||
        target.querySelector("#panel-heading");
      if (focus) {
        if (!focus.hasAttribute("tabindex") && focus.id === "conflict") focus.setAttribute("tabindex", "-1");
        focus.focus();
      }
    } else if (target.id === "calendar") {
      setUpCalendar(target.querySelector("[data-calendar]"));
    }
  });

  // ---- keyboard movement in the grid ------------------------------------------------------------

  function indexGrid(table) {
    // Place every link of the grid at (column, first row, last row), reading rowspans.
    const items = [];
    const occupied = [];
    Array.from(table.tBodies[0].rows).forEach(function (row, r) {
      let col = 0;
      Array.from(row.cells).forEach(function (cell) {
        if (cell.tagName === "TH") return;
        while (occupied[r] && occupied[r][col]) col += 1;
        const span = cell.rowSpan || 1;
        for (let k = r; k < r + span; k += 1) {
          occupied[k] = occupied[k] || [];
          occupied[k][col] = true;
        }
        cell.querySelectorAll("a[data-panel]").forEach(function (link, n) {
          items.push({ el: link, col: col, top: r, bottom: r + span - 1, order: n });
        });
        col += 1;
      });
    });
    return items;
  }

  function nearest(items, from, key) {
    const same = (item) => item.col === from.col;
    let candidates = [];
    if (key === "ArrowDown") candidates = items.filter((i) => same(i) && i.top > from.bottom).sort((a, b) => a.top - b.top);
    if (key === "ArrowUp") candidates = items.filter((i) => same(i) && i.bottom < from.top).sort((a, b) => b.bottom - a.bottom);
    if (key === "ArrowRight" || key === "ArrowLeft") {
      if (key === "ArrowRight") {
        const inCell = items.filter((i) => same(i) && i.top === from.top && i.order === from.order + 1);
        if (inCell.length) return inCell[0];
      } else if (from.order > 0) {
        const inCell = items.filter((i) => same(i) && i.top === from.top && i.order === from.order - 1);
        if (inCell.length) return inCell[0];
      }
      const step = key === "ArrowRight" ? 1 : -1;
      const columns = Array.from(new Set(items.map((i) => i.col))).sort((a, b) => a - b);
      let at = columns.indexOf(from.col) + step;
      while (at >= 0 && at < columns.length) {
        const col = columns[at];
        const here = items.filter((i) => i.col === col);
        const covering = here.filter((i) => i.top <= from.top && i.bottom >= from.top);
        if (covering.length) return covering[0];
        if (here.length) {
          return here.sort((a, b) => Math.abs(a.top - from.top) - Math.abs(b.top - from.top))[0];
        }
        at += step;
      }
      return null;
    }
    return candidates.length ? candidates[0] : null;
  }

  function setUpCalendar(table) {
    if (!table) return;
    const items = indexGrid(table);
    if (!items.length) return;
    const current = items.find((i) => i.el.classList.contains("appt")) || items[0];
    items.forEach((i) => i.el.setAttribute("tabindex", i === current ? "0" : "-1"));
    table.addEventListener("focusin", function (event) {
      const link = event.target.closest("a[data-panel]");
      if (!link) return;
      items.forEach((i) => i.el.setAttribute("tabindex", i.el === link ? "0" : "-1"));
    });
    table.addEventListener("keydown", function (event) {
      if (!["ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight"].includes(event.key)) return;
      const from = items.find((i) => i.el === document.activeElement);
      if (!from) return;
      const to = nearest(items, from, event.key);
      event.preventDefault();
      if (to) {
        to.el.focus();
        to.el.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    });
    setUpDragging(table);
    markNow(table);
  }

  // ---- drag an appointment onto an empty slot ---------------------------------------------------

  function setUpDragging(table) {
    let moving = null;
    table.addEventListener("dragstart", function (event) {
      const block = event.target.closest(".appt[data-move]");
      if (!block) return;
      moving = block;
      block.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", block.dataset.move);
    });
    table.addEventListener("dragend", function () {
      if (moving) moving.classList.remove("dragging");
      table.querySelectorAll(".drop-target").forEach((el) => el.classList.remove("drop-target"));
    });
    table.addEventListener("dragover", function (event) {
      const cell = event.target.closest("td.slot");
      if (!cell || !moving) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      table.querySelectorAll(".drop-target").forEach((el) => el !== cell && el.classList.remove("drop-target"));
      cell.classList.add("drop-target");
    });
    table.addEventListener("drop", function (event) {
      const cell = event.target.closest("td.slot");
      if (!cell || !moving) return;
      event.preventDefault();
      cell.classList.remove("drop-target");
      const slot = new URL(cell.querySelector("a").href);
      const values = { start: slot.searchParams.get("start") || "" };
      const practitioner = slot.searchParams.get("practitioner");
      if (practitioner) values.practitioner = practitioner;
      returnFocus = moving;
      window.htmx.ajax("POST", moving.dataset.move, {
        target: PANEL, swap: "innerHTML", values: values, headers: csrfHeaders(), source: moving,
      });
      moving = null;
    });
  }

  // ---- the current time ---------------------------------------------------------------------

  const loadedAt = Date.now();

  function markNow(table) {
    if (!table || !table.dataset.now) return;
    const step = parseInt(table.dataset.step, 10);
    const now = parseInt(table.dataset.now, 10) + Math.floor((Date.now() - loadedAt) / 60000);
    Array.from(table.tBodies[0].rows).forEach(function (row) {
      const minute = parseInt(row.dataset.minute, 10);
      row.classList.toggle("now", minute <= now && now < minute + step);
    });
  }

  // ---- the check-in board and the patient picker ------------------------------------------------

  document.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    if (!elt || !elt.hasAttribute("data-background-poll")) return;
    const active = document.activeElement;
    const board = document.getElementById("checkin-board");
    if (board && active && board.contains(active) && active.matches("input, select, textarea")) {
      event.preventDefault(); // someone is filling in a row: refresh at the next tick
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("[data-picker-input]")) {
      event.preventDefault(); // Enter searches; it does not submit the booking half filled in
      if (window.htmx) window.htmx.trigger(event.target, "search");
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    const target = panel();
    if (target) panelIntro = target.innerHTML;
    const table = document.querySelector("[data-calendar]");
    setUpCalendar(table);
    if (table && table.dataset.now) {
      window.setInterval(function () { markNow(document.querySelector("[data-calendar]")); }, 60000);
    }
    const hash = window.location.hash;
    if (hash === "#cancel" || hash === "#reschedule") {
      const section = document.querySelector(hash);
      if (section) {
        if (section.tagName === "DETAILS") section.open = true;
        const field = section.querySelector("input:not([type=hidden]), select, textarea");
        if (field) field.focus();
      }
    }
  });
})();
