// The billing console: sign in with a token, look up an account, and show what the API says about it.
// Every amount shown is the API's decimal text (see exact.js); API errors are shown where they happened.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const $t = (testId) => document.querySelector(`[data-testid="${testId}"]`);
  const PAGE = 20;
  const PALETTE = ["#2563eb", "#dc6803", "#12b76a", "#9e77ed", "#f04438", "#0ba5ec", "#667085", "#ee46bc"];

  const state = { kind: "user", id: null, account: null, historyCursors: [null], historyPage: 0, errorCursor: null, chart: null };

  const money = (amount, currency) => (amount === undefined || amount === null ? "—" : `${amount} ${currency || ""}`.trim());
  const when = (iso) => (iso ? String(iso).replace("T", " ").replace(/(\.\d+)?Z$/, "") : "—");
  const short = (id) => (id ? String(id).slice(0, 8) : "—");
  const show = (testId, message) => { $t(testId).textContent = message || ""; };
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const isService = () => ["service", "admin"].includes((Api.claims() || {}).role);
  const isAdmin = () => (Api.claims() || {}).role === "admin";
  const accountPath = () => `/v1/${state.kind === "user" ? "users" : "projects"}/${state.id}`;

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "—" : String(text);
    if (className) td.className = className;
    return td;
  }

  function fill(tbody, rows) {
    const body = $t(tbody);
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }));
  }

  // ---- signing in ------------------------------------------------------------------------------------------------
  function showSignIn(message) {
    $("main").hidden = true;
    $("who").hidden = true;
    $("signin").hidden = false;
    show("signin-message", message);
  }

  function showConsole() {
    const claims = Api.claims();
    $("signin").hidden = true;
    $("main").hidden = false;
    $("who").hidden = false;
    $t("who").textContent = `${claims.role || "user"} ${claims.sub}`;
    $("admin").hidden = !isAdmin();
  }

  Api.onUnauthorized = (error) => {
    const reason = (error.problem && error.problem.detail) || "the token was rejected";
    showSignIn(`Your session has ended (401: ${reason}). Sign in again with a valid token.`);
  };

  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      Api.signIn($("token").value.trim());
      $("token").value = "";
      showConsole();
    } catch (err) {
      show("signin-message", err.message);
    }
  });

  $("signout").addEventListener("click", () => { Api.signOut(); showSignIn("Signed out."); });

  // ---- looking up an account ---------------------------------------------------------------------------------------
  $("lookup-form").addEventListener("submit", (e) => { e.preventDefault(); lookUp($("kind").value, $("account-id").value.trim()); });
  $("mine").addEventListener("click", () => {
    const sub = (Api.claims() || {}).sub;
    $("kind").value = "user";
    $("account-id").value = sub || "";
    lookUp("user", sub || "");
  });
  $("refresh").addEventListener("click", () => loadAll());

  async function lookUp(kind, id) {
    show("lookup-error", "");
    if (!uuid.test(id)) { show("lookup-error", "Enter the account's id: a UUID."); return; }
    state.kind = kind;
    state.id = id;
    state.historyCursors = [null];
    state.historyPage = 0;
    $("account-views").hidden = true;
    try {
      await loadAccount();
    } catch (err) {
      if (err.status !== 401) show("lookup-error", err.message);
      return;
    }
    $("account-views").hidden = false;
    await Promise.all([loadSpend(), loadHistory(), loadErrors(true), loadHolds(), loadGrants()]);
  }

  async function loadAll() {
    try { await loadAccount(); } catch (err) { if (err.status !== 401) show("lookup-error", err.message); return; }
    await Promise.all([loadSpend(), loadHistory(), loadErrors(true), loadHolds(), loadGrants()]);
  }

  async function loadAccount() {
    const a = await Api.get(`${accountPath()}/billing`);
    state.account = a;
    $t("account-title").textContent = `${a.kind} ${a.id}${a.creatorId ? ` (created by ${a.creatorId})` : ""}`;
    $t("balance").textContent = money(a.balance, a.currency);
    $t("available").textContent = money(a.available, a.currency);
    $t("held").textContent = money(a.held, a.currency);
    $t("plan").textContent = a.isPro ? `pro, quota ${money(a.monthlyQuota, a.currency)} a month` : "pay as you go";
    $t("quota").textContent = a.isPro ? `${money(a.monthUsed, a.currency)} of ${money(a.monthlyQuota, a.currency)}` : "—";
    $t("cycle").textContent = a.cycleStart ? `${when(a.cycleStart)} → ${when(a.cycleEnd)}` : "—";
    $("plan-pro").checked = !!a.isPro;
    $("plan-quota").value = a.monthlyQuota;
  }

  // ---- spend chart -----------------------------------------------------------------------------------------------
  async function loadSpend() {
    show("spend-error", "");
    let summary;
    try {
      summary = await Api.get(`/v1/usage/summary?scope=${state.kind}&scopeId=${state.id}&bucket=day&groupBy=model`);
    } catch (err) {
      show("spend-error", err.message);
      return;
    }
    const days = [];
    for (let t = Date.parse(summary.from); t < Date.parse(summary.to); t += 86400000) days.push(new Date(t).toISOString().slice(0, 10));
    const models = [...new Set(summary.buckets.map((b) => b.modelId))];
    const currency = summary.total.currency;
    const datasets = models.map((model, i) => {
      const exact = days.map(() => "0");
      for (const b of summary.buckets.filter((x) => x.modelId === model)) {
        const day = days.indexOf(String(b.start).slice(0, 10));
        if (day >= 0) exact[day] = Exact.sum([exact[day], b.cost]);
      }
      // Bar heights are drawn from doubles; every figure a person reads (tooltip, table) is the exact text.
      return { label: short(model), modelId: model, exact, data: exact.map(Number), backgroundColor: PALETTE[i % PALETTE.length], stack: "spend" };
    });

    if (state.chart) state.chart.destroy();
    state.chart = new Chart($("spend-chart"), {
      type: "bar",
      data: { labels: days.map((d) => d.slice(5)), datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: currency } } },
        plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.dataset.exact[c.dataIndex]} ${currency}` } } },
      },
    });

    fill("spend-models", models.map((model, i) => {
      const rows = summary.buckets.filter((b) => b.modelId === model);
      const name = cell(model);
      name.style.borderLeft = `4px solid ${PALETTE[i % PALETTE.length]}`;
      return [name, cell(Exact.sum(rows.map((b) => b.requests)), "num"), cell(money(Exact.sum(rows.map((b) => b.cost)), currency), "num")];
    }));
    $t("spend-requests").textContent = summary.total.requests;
    $t("spend-total").textContent = money(summary.total.cost, currency);
    $t("spend-total").dataset.chartSum = Exact.sum(datasets.flatMap((d) => d.exact));
  }

  // ---- history ---------------------------------------------------------------------------------------------------
  async function loadHistory() {
    show("history-error", "");
    const cursor = state.historyCursors[state.historyPage];
    try {
      const page = await Api.get(`${accountPath()}/history?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      state.historyCursors[state.historyPage + 1] = page.nextCursor;
      fill("history-rows", page.items.map((h) => [
        cell(when(h.createdAt)), cell(h.reason), cell(money(h.amount, h.currency), "num"), cell(h.quotaUsed, "num"),
        cell(money(h.balanceAfter, h.currency), "num"), cell(short(h.modelId)),
        cell(h.inputTokens !== undefined && h.inputTokens !== null ? `${h.inputTokens} / ${h.outputTokens}` : "—"),
      ]));
      $t("history-page").textContent = `page ${state.historyPage + 1}`;
      $("history-newer").disabled = state.historyPage === 0;
      $("history-older").disabled = !page.nextCursor;
    } catch (err) {
      show("history-error", err.message);
    }
  }

  $("history-older").addEventListener("click", () => { state.historyPage++; loadHistory(); });
  $("history-newer").addEventListener("click", () => { if (state.historyPage > 0) { state.historyPage--; loadHistory(); } });

  // ---- billing errors --------------------------------------------------------------------------------------------
  async function loadErrors(first) {
    show("errors-error", "");
    if (first) state.errorCursor = null;
    const resolved = $("errors-filter").value;
    try {
      const page = await Api.get(`/v1/billing-errors?scope=${state.kind}&scopeId=${state.id}&limit=${PAGE}`
        + (resolved ? `&resolved=${resolved}` : "") + (state.errorCursor ? `&cursor=${encodeURIComponent(state.errorCursor)}` : ""));
      state.errorCursor = page.nextCursor;
      $("errors-older").disabled = !page.nextCursor;
      fill("errors-rows", page.items.map((item) => {
        const action = document.createElement("td");
        if (!item.resolved && isService()) {
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = "Resolve";
          button.dataset.errorId = item.id;
          button.addEventListener("click", () => resolve(item.id));
          action.append(button);
        }
        return [cell(when(item.createdAt)), cell(item.errorType), cell(item.message), cell(item.resolved ? "resolved" : "open"), action];
      }));
    } catch (err) {
      show("errors-error", err.message);
    }
  }

  async function resolve(id) {
    try {
      await Api.post(`/v1/billing-errors/${id}/resolve`);
      await loadErrors(true);
    } catch (err) {
      show("errors-error", err.message);
    }
  }

  $("errors-filter").addEventListener("change", () => loadErrors(true));
  $("errors-older").addEventListener("click", () => loadErrors(false));

  // ---- holds and grants (API.md v1 additions) --------------------------------------------------------------------
  async function loadHolds() {
    show("holds-error", "");
    fill("holds-rows", []);
    try {
      const page = await Api.get(`${accountPath()}/holds?status=active&limit=${PAGE}`);
      fill("holds-rows", page.items.map((h) => [
        cell(short(h.holdId)), cell(money(h.amount, h.currency), "num"), cell(short(h.modelId)), cell(when(h.expiresAt)), cell(h.status),
      ]));
    } catch (err) {
      show("holds-error", `Holds could not be read: ${err.message}`);
    }
  }

  async function loadGrants() {
    show("grants-error", "");
    fill("grants-rows", []);
    try {
      const page = await Api.get(`${accountPath()}/grants?limit=${PAGE}`);
      fill("grants-rows", page.items.map((g) => [
        cell(short(g.grantId)), cell(g.category), cell(g.priority, "num"), cell(money(g.amount, g.currency), "num"),
        cell(money(g.remaining, g.currency), "num"), cell(when(g.effectiveAt)), cell(when(g.expiresAt)), cell(g.status),
      ]));
    } catch (err) {
      show("grants-error", `Grants could not be read: ${err.message}`);
    }
  }

  // ---- admin -----------------------------------------------------------------------------------------------------
  async function admin(action) {
    show("admin-message", "");
    show("admin-error", "");
    try {
      show("admin-message", await action());
    } catch (err) {
      show("admin-error", err.message);
    }
  }

  const needsAccount = () => { if (!state.id) throw new Error("Look up an account first."); };
  const decimal = (text, name) => {
    if (!Exact.isPlainDecimal(text)) throw new Error(`${name} must be a decimal number such as 5 or 12.50.`);
    return text; // goes into the JSON body as typed, digit for digit
  };

  // A top-up whose outcome is unknown (no answer, or a 503) is sent again with the same creditId, so that submitting
  // again credits it at most once; a new amount or account, an answer, or a refusal starts a new one.
  let pendingTopUp = null;
  const newCreditId = () => {
    const b = crypto.getRandomValues(new Uint8Array(16)); // not randomUUID: it needs a secure context, and plain http is one only on loopback
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  $("topup-form").addEventListener("submit", (e) => {
    e.preventDefault();
    admin(async () => {
      needsAccount();
      const amount = decimal($("topup-amount").value.trim(), "The amount");
      const path = `${accountPath()}/credits`;
      if (!pendingTopUp || pendingTopUp.path !== path || pendingTopUp.amount !== amount) pendingTopUp = { path, amount, creditId: newCreditId() };
      let account;
      try {
        account = await Api.post(path, `{"amount":${amount},"reason":"top_up","creditId":"${pendingTopUp.creditId}"}`);
      } catch (err) {
        if ([0, 502, 503, 504].includes(err.status)) throw new Error(`${err.message} Its outcome is unknown: submit again to retry it with the same creditId ${pendingTopUp.creditId}; it is credited at most once.`);
        pendingTopUp = null;
        throw err;
      }
      pendingTopUp = null;
      await loadAll();
      return `Topped up ${amount}: the balance is ${money(account.balance, account.currency)}.`;
    });
  });

  $("plan-pro").addEventListener("change", () => { if (!$("plan-pro").checked) $("plan-quota").value = "0"; });

  $("plan-form").addEventListener("submit", (e) => {
    e.preventDefault();
    admin(async () => {
      needsAccount();
      // A quota applies to pro accounts only: going back to pay as you go sends 0, whatever the field still shows.
      const quota = $("plan-pro").checked ? decimal($("plan-quota").value.trim() || "0", "The monthly quota") : "0";
      await Api.put(`${accountPath()}/plan`, `{"isPro":${$("plan-pro").checked},"monthlyQuota":${quota}}`);
      await loadAll();
      return "Plan changed.";
    });
  });

  $("price-form").addEventListener("submit", (e) => {
    e.preventDefault();
    admin(async () => {
      const model = $("price-model").value.trim();
      if (!uuid.test(model)) throw new Error("The model id must be a UUID.");
      const input = decimal($("price-input").value.trim(), "The input price");
      const output = decimal($("price-output").value.trim(), "The output price");
      const from = $("price-from").value.trim();
      const body = `{"inputPricePerMillion":${input},"outputPricePerMillion":${output},"currency":${JSON.stringify($("price-currency").value.trim())}`
        + (from ? `,"effectiveFrom":${JSON.stringify(from)}}` : "}");
      const stored = await Api.put(`/v1/models/${model}/pricing`, body);
      return `Price stored: ${stored.inputPricePerMillion} / ${stored.outputPricePerMillion} ${stored.currency} per million tokens from ${when(stored.effectiveFrom)}.`;
    });
  });

  // ---- start -----------------------------------------------------------------------------------------------------
  if (Api.claims()) showConsole(); else showSignIn("");
})();
