// The conversations list (/desk/conversations): the dashboard's drill-down. Filters live in the URL
// (?date=…&outcome=…), the rows come from /desk/api/conversations in pages of 50, the CSV link
// carries the same filters. Agents only ever get their own conversations (the server decides).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h } = window.KefuDesk;
  const Q = window.KefuQa;
  const form = $("conv-filters");
  const PAGE = 50;
  const state = { offset: 0, total: 0, seq: 0 };

  function fields() { return [...form.elements].filter((el) => el.name); }
  function fromUrl() {
    const query = new URLSearchParams(location.search);
    for (const el of fields()) {
      const value = query.get(el.name) || "";
      if (el.type === "checkbox") el.checked = value === "true";
      else if (el.tagName === "SELECT" && value && ![...el.options].some((o) => o.value === value)) {
        el.appendChild(h("option", { value, text: value }));
        el.value = value;
      } else el.value = value;
    }
    state.offset = Math.max(0, Number(query.get("offset")) || 0);
  }
  function query(withPage) {
    const q = new URLSearchParams();
    for (const el of fields()) {
      if (el.type === "checkbox") { if (el.checked) q.set(el.name, "true"); } else if (el.value.trim()) q.set(el.name, el.value.trim());
    }
    if (withPage && state.offset) q.set("offset", String(state.offset));
    return q;
  }
  const score = (v) => {
    if (v === null || v === undefined) return h("span", { className: "muted", text: "—" });
    const s = Number(v);
    return h("span", { className: `sv-score ${s < 60 ? "low" : s < 90 ? "mid" : "high"}`, text: s.toFixed(0) });
  };
  function row(r) {
    return h("tr", { className: `conv-row${r.red_cards ? " is-red" : ""}`, "data-testid": "conversation-row", dataset: { pk: r.pk } },
      h("td", {}, h("a", { href: r.link || `/desk/conversations/${r.pk}`, text: `#${r.pk}` }), r.red_cards ? h("span", { className: "badge qa-red", text: "红牌" }) : null),
      h("td", { text: Q.time(r.started_at) }),
      h("td", { text: `${Q.label.channel(r.channel)} · ${r.language || "—"}` }),
      h("td", {}, h("span", { className: `badge outcome-${r.outcome}`, text: Q.label.outcome(r.outcome) })),
      h("td", { text: r.agent || (r.agents && r.agents.length ? r.agents.join(", ") : "—") }),
      h("td", {}, r.ticket ? h("a", { href: `/desk/tickets/${encodeURIComponent(r.ticket)}`, text: r.ticket }) : "—",
        r.tier ? h("span", { className: "muted", text: ` ${Q.label.tier(r.tier)}` }) : null),
      h("td", { text: Q.secs(r.first_response_seconds) }),
      h("td", { text: r.rating ? "★".repeat(r.rating) : "—" }),
      h("td", {}, score(r.bot_score)),
      h("td", {}, score(r.agent_score)),
      h("td", { className: "first-question", title: r.first_question || "", text: r.first_question || "—" }));
  }
  async function load() {
    const seq = ++state.seq;
    const q = query(false);
    q.set("limit", String(PAGE));
    q.set("offset", String(state.offset));
    let data;
    try { data = await api(`/desk/api/conversations?${q}`); } catch (err) {
      if (seq === state.seq) { $("conv-total").textContent = "!"; window.KefuDesk.notify(err.message); }
      return;
    }
    if (seq !== state.seq) return;
    state.total = data.total;
    $("conversations").replaceChildren(...data.rows.map(row));
    $("conversations-empty").hidden = data.rows.length > 0;
    $("conv-total").textContent = Q.num(data.total);
    const last = Math.min(state.offset + data.rows.length, data.total);
    $("page-info").textContent = data.total ? `${Q.num(state.offset + 1)}–${Q.num(last)} / ${Q.num(data.total)}` : "";
    $("page-previous").disabled = state.offset === 0;
    $("page-next").disabled = last >= data.total;
    const csv = query(false);
    $("csv-link").href = `/desk/api/conversations.csv${csv.toString() ? "?" + csv : ""}`;
    document.body.dataset.loaded = "true";
  }
  function changed() {
    state.offset = 0;
    const q = query(true);
    history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
    load();
  }
  function go(offset) {
    state.offset = Math.max(0, offset);
    const q = query(true);
    history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
    load();
    window.scrollTo({ top: 0 });
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "date" && event.target.value) { form.elements.start.value = ""; form.elements.end.value = ""; }
    if ((event.target.name === "start" || event.target.name === "end") && event.target.value) form.elements.date.value = "";
    changed();
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); changed(); });
  $("filter-reset").addEventListener("click", () => { history.replaceState(null, "", location.pathname); fromUrl(); load(); });
  $("page-previous").addEventListener("click", () => go(state.offset - PAGE));
  $("page-next").addEventListener("click", () => go(state.offset + PAGE));
  window.addEventListener("popstate", () => { fromUrl(); load(); });
  fromUrl();
  load();
})();
