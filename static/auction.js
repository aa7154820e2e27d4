// The live lot page (docs/bidding.md "Live updates"): keeps the board current from the
// lot's Server-Sent Events stream, counts down on the exchange's clock, not the PC's, and
// tells a bidder the moment a rival's bid or proxy puts it behind.
// Plain DOM, no framework; the page works without it (forms post, values are rendered).
(function () {
  "use strict";
  var board = document.getElementById("live");
  if (!board) return;
  var t = board.dataset;
  var state = JSON.parse(t.state);
  var offset = 0; // server clock minus this PC's clock, in ms
  var tz = t.tz || "Asia/Shanghai";
  var seen = {}; // bid seq -> true, for the history
  var OPEN = { announced: true, bidding: true };
  var HISTORY = 20;

  function $(name, root) { return (root || document).querySelector('[data-live="' + name + '"]'); }

  function yuan(fen) {
    var sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    var whole = Math.floor(fen / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = ("0" + (fen % 100)).slice(-2);
    return sign + "¥" + whole + "." + cents;
  }

  var clockFmt = new Intl.DateTimeFormat("sv-SE", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });
  function local(iso) { return clockFmt.format(new Date(iso)); } // 2025-01-02 03:04:05

  function syncClock(serverTime) {
    if (serverTime) offset = Date.parse(serverTime) - Date.now();
  }
  function serverNow() { return Date.now() + offset; }

  function minNext() {
    if (state.kind === "sealed" || state.price_fen === null) return state.start_price_fen;
    return state.price_fen + state.increment_fen;
  }

  function hms(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400);
    s -= d * 86400;
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var text = ("0" + h).slice(-2) + ":" + ("0" + m).slice(-2) + ":" + ("0" + sec).slice(-2);
    return d ? t.tDays.replace("%(d)s", d).replace("%(hms)s", text) : text;
  }

  function tick() {
    var label = "", text;
    var now = serverNow();
    var starts = state.starts_at ? Date.parse(state.starts_at) : null;
    var ends = state.ends_at ? Date.parse(state.ends_at) : null;
    var ended = false;
    if (!OPEN[state.status]) {
      text = t["tStatus" + state.status.charAt(0).toUpperCase() + state.status.slice(1)] || t.tStatus;
      ended = true;
    } else if (state.status === "announced" && starts !== null && now < starts) {
      label = t.tStartsIn; text = hms(starts - now);
    } else if (ends !== null && now < ends) {
      label = t.tEndsIn; text = hms(ends - now);
    } else {
      text = t.tEnded; // the worker closes the lot; the result arrives with the next page
      ended = true;
    }
    $("countdown-label").textContent = label;
    $("countdown").textContent = text;
    board.toggleAttribute("data-ended", ended);
    var forms = document.getElementById("bid-forms");
    if (forms) {
      forms.querySelectorAll("button[type=submit]").forEach(function (b) {
        if (ended && !b.disabled) { b.disabled = true; b.dataset.ended = "1"; }
        else if (!ended && b.dataset.ended) { b.disabled = false; delete b.dataset.ended; }
      });
    }
  }

  function row(bid) {
    var tr = document.createElement("tr");
    tr.dataset.seq = bid.seq;
    var cells = [bid.code, yuan(bid.amount_fen), t["tKind" + bid.kind.charAt(0).toUpperCase() + bid.kind.slice(1)] || bid.kind, ""];
    cells.forEach(function (value, i) {
      var td = document.createElement("td");
      if (i === 0) { var c = document.createElement("code"); c.textContent = value; td.appendChild(c); }
      else if (i === 3) {
        var time = document.createElement("time");
        time.dateTime = bid.at;
        time.textContent = local(bid.at).slice(5); // 01-02 03:04:05: a round may last days
        td.appendChild(time);
      } else td.textContent = value;
      if (i === 1) td.className = "amount";
      tr.appendChild(td);
    });
    tr.appendChild(document.createElement("td"));
    return tr;
  }

  function renderHistory(bids, replace) {
    var body = $("history");
    if (!body) return;
    if (replace) { body.textContent = ""; seen = {}; }
    else body.querySelectorAll("tr").forEach(function (tr) { seen[tr.dataset.seq] = true; });
    (bids || []).forEach(function (bid) {
      if (seen[bid.seq]) return;
      seen[bid.seq] = true;
      var tr = row(bid);
      // newest first: insert before the first row with a lower sequence
      var before = null;
      body.querySelectorAll("tr").forEach(function (other) {
        if (!before && Number(other.dataset.seq) < bid.seq) before = other;
      });
      body.insertBefore(tr, before);
    });
    var rows = body.querySelectorAll("tr");
    for (var i = HISTORY; i < rows.length; i++) rows[i].remove();
    rows = body.querySelectorAll("tr");
    rows.forEach(function (tr, i) {
      var mark = tr.lastElementChild;
      mark.textContent = "";
      if (i === 0 && tr.firstElementChild.textContent === state.leader_code) {
        var badge = document.createElement("span");
        badge.className = "badge approved";
        badge.textContent = t.tLeading;
        mark.appendChild(badge);
      }
    });
    var none = $("history-none");
    if (none) none.hidden = rows.length > 0;
  }

  function renderForms() {
    var forms = document.getElementById("bid-forms");
    if (!forms) return;
    var amount = $("amount", forms);
    if (amount && !amount.dataset.dirty) {
      var next = (minNext() / 100).toFixed(2);
      if (amount.value !== next) {
        amount.value = next;
        amount.dispatchEvent(new CustomEvent("amount:set", { bubbles: true }));  // static/amounts.js
      }
    }
    var note = $("min-note", forms);
    if (note && note.dataset.template) {
      note.textContent = note.dataset.template
        .replace("%(amount)s", yuan(minNext())).replace("%(increment)s", yuan(state.increment_fen));
    }
    var quick = $("quick", forms);
    if (quick) quick.hidden = false;
  }

  // This bidder's standing, from the same message as the board (no event of its own, so a
  // hot lot costs the exchange nothing per bidder): leading, or outbid by whom.
  var leadingBefore = null;
  function renderStanding(latest) {
    var mine = $("my-code");
    if (!mine || state.kind === "sealed") return;
    var leading = state.leader_code === mine.textContent;
    var badge = $("you-lead"), outbid = $("outbid");
    if (badge) badge.hidden = !leading;
    if (leading && outbid) outbid.hidden = true;
    if (leadingBefore && !leading && state.leader_code && outbid) {
      var byProxy = latest && latest.code === state.leader_code && latest.kind === "proxy";
      outbid.textContent = outbid.dataset[byProxy ? "templateProxy" : "template"]
        .replace("%(price)s", yuan(state.price_fen)).replace("%(next)s", yuan(minNext()));
      outbid.hidden = false;
      // "出价成功 …" said of the bid now behind is no longer the truth
      document.querySelectorAll(".bid-result.accepted").forEach(function (p) { p.hidden = true; });
      // the relay writes the outbid notice to the inbox a moment after the bid commits
      [300, 1500, 5000].forEach(function (ms) {
        setTimeout(function () { document.body.dispatchEvent(new Event("ipx:inbox")); }, ms);
      });
    }
    leadingBefore = leading;
  }

  function latestBid(bids) {
    var top = null;
    (bids || []).forEach(function (b) { if (!top || b.seq > top.seq) top = b; });
    return top;
  }

  function render(latest) {
    renderStanding(latest);
    if (state.kind !== "sealed") {
      var price = $("price");
      if (price) price.textContent = yuan(state.price_fen === null ? state.start_price_fen : state.price_fen);
      var priceLabel = $("price-label");
      if (priceLabel) priceLabel.textContent = state.price_fen === null ? t.tStart : t.tCurrent;
      var leader = $("leader");
      if (leader) leader.textContent = state.leader_code || t.tNobody;
    }
    $("bid-count").textContent = state.bid_count;
    var endsAt = $("ends-at");
    if (endsAt && state.ends_at) {
      endsAt.dateTime = state.ends_at;
      endsAt.textContent = local(state.ends_at);
    }
    renderForms();
    tick();
  }

  // `state`: the whole lot as PostgreSQL has it (first event, or the answer to a bid).
  function onState(next) {
    if (next.lot_id !== state.lot_id) return;
    syncClock(next.server_time);
    var replace = next.round !== state.round || next.bid_count >= state.bid_count;
    if (replace) state = next;
    renderHistory(next.bids, replace);
    render(latestBid(next.bids));
  }

  // `update`: one committed batch. Messages of one lot may arrive out of order from
  // several app processes: only a newer one moves the price, any one adds its bids.
  function onUpdate(msg) {
    if (msg.lot_id !== state.lot_id) return;
    syncClock(msg.server_time);
    if (msg.round !== state.round || msg.bid_count > state.bid_count) {
      state.round = msg.round;
      state.price_fen = msg.price_fen;
      state.leader_code = msg.leader_code;
      state.ends_at = msg.ends_at;
      state.bid_count = msg.bid_count;
      if (state.status === "announced") state.status = "bidding"; // a bid means it opened
    }
    if (msg.status && msg.status !== state.status) state.status = msg.status;
    renderHistory(msg.bids, false);
    render(latestBid(msg.bids));
  }

  function connect() {
    if (!window.EventSource) return;
    var source = new EventSource(t.events);
    var warn = $("reconnecting");
    source.addEventListener("state", function (e) {
      if (warn) warn.hidden = true;
      onState(JSON.parse(e.data));
    });
    source.addEventListener("update", function (e) { onUpdate(JSON.parse(e.data)); });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself; the next `state` event re-syncs the page.
      if (warn) warn.hidden = false;
    });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-steps]");
    if (!button) return;
    var forms = document.getElementById("bid-forms");
    var amount = forms && $("amount", forms);
    if (!amount) return;
    var base = state.price_fen === null ? state.start_price_fen - state.increment_fen : state.price_fen;
    amount.value = ((base + Number(button.dataset.steps) * state.increment_fen) / 100).toFixed(2);
    amount.dataset.dirty = "1";
    amount.dispatchEvent(new Event("input", { bubbles: true }));  // said back by static/amounts.js
  });
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches('[data-live="amount"]')) e.target.dataset.dirty = "1";
  });

  // The bid answer replaces #bid-forms; a refusal comes with its HTTP status (409, 403…)
  // and is shown like an acceptance. Anything else (an error page) is left alone.
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var d = e.detail;
    if (d.target && d.target.id === "bid-forms" && d.xhr.getResponseHeader("X-Bid-Panel")) {
      d.shouldSwap = true;
      d.isError = false;
    }
  });
  // The answer carries the lot's state after the bid: show it at once, before the stream.
  document.body.addEventListener("htmx:afterSettle", function () {
    var forms = document.getElementById("bid-forms");
    if (forms && forms.dataset.state && !forms.dataset.applied) {
      forms.dataset.applied = "1";
      onState(JSON.parse(forms.dataset.state));
    }
  });

  var first = document.getElementById("bid-forms");
  if (first) first.dataset.applied = "1";
  syncClock(state.server_time);
  renderHistory([], false);
  render();
  setInterval(tick, 250);
  connect();
})();
