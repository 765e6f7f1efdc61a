// The tickets page (/desk/tickets): vanilla JavaScript, no framework; the CSP forbids inline code.
//   filters  – status/tier/grade/assignee/at-risk/overdue; kept in the URL (?status=…), sent to the API
//   queue    – the table, ordered by due time, with live countdowns and SLA markers
//   alerts   – the right column: unacknowledged alerts, newest first, with "acknowledge"
//   followups– supervisors' tab: second follow-ups (outcome + note)
//   live     – ticket rows, alerts and follow-ups arrive on the desk WebSocket
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h, notify } = window.KefuDesk;
  const T = window.KefuTickets;
  const app = $("tickets-app");
  const me = { username: app.dataset.username, role: app.dataset.role, lead: app.dataset.lead === "true" };
  const FILTERS = ["status", "tier", "grade", "assignee", "at_risk", "overdue"];
  const state = { rows: new Map(), alerts: new Map(), tasks: [], loadSeq: 0 };

  async function attempt(call) {
    try { return await call; } catch (err) { if (err.status !== 401) notify(err.message || String(err)); return null; }
  }

  // ---------------------------------------------------------------- filters (in the URL)
  function readFilters() {
    return {
      status: $("filter-status").value || "active",
      tier: $("filter-tier").value, grade: $("filter-grade").value, assignee: $("filter-assignee").value,
      at_risk: $("filter-at-risk").checked, overdue: $("filter-overdue").checked,
    };
  }
  function selectValue(select, value) {
    if (value && ![...select.options].some((o) => o.value === value)) select.appendChild(h("option", { value, text: value }));
    select.value = value;
  }
  function applyUrl() {
    const query = new URLSearchParams(location.search);
    selectValue($("filter-status"), query.get("status") || "active");
    selectValue($("filter-tier"), query.get("tier") || "");
    selectValue($("filter-grade"), query.get("grade") || "");
    selectValue($("filter-assignee"), query.get("assignee") || "");
    $("filter-at-risk").checked = query.get("at_risk") === "true";
    $("filter-overdue").checked = query.get("overdue") === "true";
  }
  function query(filters) {
    const q = new URLSearchParams();
    for (const name of FILTERS) {
      const value = filters[name];
      if (value === true) q.set(name, "true");
      else if (value && !(name === "status" && value === "active")) q.set(name, value);
    }
    return q;
  }
  // Whether a row (from a live event) belongs in the table under the current filters.
  function passes(row, f) {
    if (f.status === "active" && T.FINISHED.has(row.status)) return false;
    if (f.status !== "active" && f.status !== "all" && row.status !== f.status) return false;
    if (f.tier && row.tier !== f.tier) return false;
    if (f.grade && row.grade !== f.grade) return false;
    if (f.assignee === "me" && row.assignee !== me.username) return false;
    if (f.assignee === "none" && row.assignee) return false;
    if (f.assignee && !["me", "none"].includes(f.assignee) && row.assignee !== f.assignee) return false;
    const marker = T.sla(row).state;
    if (f.at_risk && marker !== "at_risk") return false;
    if (f.overdue && marker !== "overdue") return false;
    if (!me.lead && row.assignee && row.assignee !== me.username) return false;
    return true;
  }

  // ---------------------------------------------------------------- queue
  const dueMs = (row) => { const d = T.parse(row.due_at); return d ? d.getTime() : Infinity; };
  function ticketRow(row) {
    const finished = T.FINISHED.has(row.status);
    const marker = T.sla(row).state;
    const link = h("a", { href: `/desk/tickets/${encodeURIComponent(row.number)}`, className: "ticket-link", text: row.number });
    return h("tr", {
      className: ["ticket-row", marker && `is-${marker.replace("_", "-")}`, row.assignee === me.username && "is-mine"].filter(Boolean).join(" "),
      dataset: { number: row.number, status: row.status, sla: marker || "ok" }, "data-testid": "ticket-row",
    },
      h("td", {}, link, row.escalated && h("span", { className: "badge badge-escalated", text: "已升级 Escalated" })),
      h("td", { className: "due-cell" },
        h("span", { className: "countdown", dataset: { due: row.due_at || "", finished: String(finished) }, title: T.time(row.due_at) }),
        T.slaBadge(row)),
      h("td", {}, h("span", { className: `badge status-badge status-${row.status}`, text: T.label.status(row.status) })),
      h("td", {},
        h("span", { className: `badge badge-tier tier-${row.tier}`, text: T.label.tier(row.tier) }),
        row.grade && h("span", { className: `badge badge-grade grade-${row.grade}`, text: T.label.grade(row.grade) })),
      h("td", { className: "summary-cell", title: row.summary || "" }, h("div", { className: "summary-text", text: row.summary || "—" })),
      h("td", { className: "assignee-cell" }, row.assignee_name || row.assignee || h("span", { className: "muted", text: "未指派 Unassigned" })));
  }
  function renderQueue() {
    const rows = [...state.rows.values()].sort((a, b) => dueMs(a) - dueMs(b) || String(a.number).localeCompare(String(b.number)));
    $("tickets").replaceChildren(...rows.map(ticketRow));
    $("tickets-count").textContent = String(rows.length);
    $("tickets-empty").hidden = rows.length > 0;
    T.paintCountdowns();
  }
  async function loadTickets() {
    const filters = readFilters();
    const seq = ++state.loadSeq;
    const q = query(filters);
    const data = await attempt(api(`/desk/api/tickets${q.toString() ? "?" + q : ""}`));
    if (seq !== state.loadSeq || !data) return;
    state.rows = new Map((data.tickets || []).map((row) => [row.number, row]));
    renderQueue();
  }
  function onFilterChange() {
    const q = query(readFilters());
    history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
    loadTickets();
  }
  function upsertRow(row) {
    if (!row || typeof row.number !== "string") return;
    if (passes(row, readFilters())) state.rows.set(row.number, row);
    else state.rows.delete(row.number);
    renderQueue();
  }

  // ---------------------------------------------------------------- alerts
  function alertItem(alert) {
    const ack = h("button", { type: "button", className: "btn btn-small alert-ack", dataset: { alertId: alert.id }, text: "知道了 Acknowledge" });
    return h("li", { className: `alert alert-${alert.severity || "info"}`, dataset: { alertId: alert.id, kind: alert.kind || "" }, "data-testid": "alert" },
      h("p", { className: "alert-head" },
        h("strong", { className: "alert-kind", text: T.label.alert(alert.kind) }),
        h("span", { className: "badge", text: T.label.severity(alert.severity) })),
      h("p", { className: "alert-text", text: alert.text || "" }),
      h("p", { className: "alert-foot" },
        alert.ticket && h("a", { href: `/desk/tickets/${encodeURIComponent(alert.ticket)}`, text: alert.ticket }),
        h("time", { text: T.time(alert.created_at) }),
        ack));
  }
  function renderAlerts() {
    const alerts = [...state.alerts.values()].sort((a, b) => b.id - a.id);
    $("alerts").replaceChildren(...alerts.map(alertItem));
    $("alerts-count").textContent = String(alerts.length);
    $("alerts-empty").hidden = alerts.length > 0;
  }
  async function loadAlerts() {
    const data = await attempt(api("/desk/api/alerts"));
    if (!data) return;
    state.alerts = new Map((data.alerts || []).map((a) => [a.id, a]));
    renderAlerts();
  }
  function upsertAlert(alert) {
    if (!alert || typeof alert.id !== "number") return;
    if (alert.acknowledged_at) state.alerts.delete(alert.id);
    else {
      if (!state.alerts.has(alert.id) && alert.severity !== "info") notify(`${T.label.alert(alert.kind)}: ${alert.text || ""}`, "info");
      state.alerts.set(alert.id, alert);
    }
    renderAlerts();
  }
  async function acknowledge(id) {
    const done = await attempt(api(`/desk/api/alerts/${encodeURIComponent(id)}/ack`, {}));
    if (done) { state.alerts.delete(id); renderAlerts(); }
  }

  // ---------------------------------------------------------------- follow-ups (supervisors)
  function outcomeForm(task) {
    const select = h("select", { className: "followup-outcome", "aria-label": "结果 Outcome", required: true },
      h("option", { value: "", text: "选择结果 Outcome…" }),
      ...["solved", "not_solved", "unreachable"].map((o) => h("option", { value: o, text: T.label.outcome(o) })));
    return h("form", { className: "followup-form row", dataset: { taskId: task.id }, "data-testid": "followup-form" },
      select,
      h("input", { type: "text", className: "followup-note", maxlength: "2000", placeholder: "回访记录 Note", "aria-label": "回访记录 Note" }),
      h("button", { type: "submit", className: "btn btn-small btn-primary followup-save", text: "记录 Record" }));
  }
  function taskItem(task) {
    const done = !!task.done_at;
    return h("li", { className: `followup${done ? " is-done" : ""}`, dataset: { taskId: task.id }, "data-testid": "followup" },
      h("p", { className: "row" },
        task.ticket && h("a", { href: `/desk/tickets/${encodeURIComponent(task.ticket)}`, className: "ticket-link", text: task.ticket }),
        h("span", { className: "badge", text: `评分 Score ${task.score ?? "—"}` }),
        task.assignee && h("span", { className: "muted", text: `主管 ${task.assignee_name || task.assignee}` }),
        done ? h("span", { className: "muted", text: `${T.label.outcome(task.outcome)} · ${T.time(task.done_at)}` })
          : h("span", { className: "countdown", dataset: { due: task.due_at || "", finished: "false" } }),
        !done && h("time", { className: "followup-due muted", datetime: task.due_at || "", text: `截止 Due ${T.time(task.due_at)}` })),
      task.note && h("p", { className: "pre", text: task.note }),
      !done && outcomeForm(task));
  }
  function renderTasks() {
    if (!$("followups")) return;
    $("followups").replaceChildren(...state.tasks.map(taskItem));
    $("followups-count").textContent = String(state.tasks.filter((t) => !t.done_at).length);
    $("followups-empty").hidden = state.tasks.length > 0;
    T.paintCountdowns();
  }
  async function loadTasks() {
    if (!me.lead) return;
    const done = $("followups-done").checked;
    const data = await attempt(api(`/desk/api/followups${done ? "?done=true" : ""}`));
    if (!data) return;
    state.tasks = data.tasks || [];
    renderTasks();
  }
  async function saveOutcome(form) {
    const outcome = form.querySelector(".followup-outcome").value;
    if (!outcome) { notify("请选择回访结果 Choose an outcome."); return; }
    const note = form.querySelector(".followup-note").value.trim();
    const button = form.querySelector("button");
    button.disabled = true;
    const done = await attempt(api(`/desk/api/followups/${encodeURIComponent(form.dataset.taskId)}/outcome`, { outcome, note }));
    button.disabled = false;
    if (done) { notify("已记录回访结果 Follow-up recorded.", "info"); loadTasks(); }
  }

  // ---------------------------------------------------------------- tabs, live, boot
  function showTab(name) {
    for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(on));
      $(`panel-${tab.dataset.tab}`).hidden = !on;
    }
    if (name === "followups") loadTasks();
  }
  function onEvent(event) {
    if (event.type === "resync") { loadTickets(); loadAlerts(); loadTasks(); }
    else if (event.type === "ticket") upsertRow(event.ticket);
    else if (event.type === "alert") upsertAlert(event.alert);
    else if (event.type === "followup") loadTasks();
  }
  async function loadAssignees() {
    if (!me.lead) return;
    const people = await attempt(api("/desk/api/assignees"));
    if (!Array.isArray(people)) return;
    const select = $("filter-assignee"), current = select.value;
    for (const p of people) {
      if (![...select.options].some((o) => o.value === p.username)) select.appendChild(h("option", { value: p.username, text: `${p.display_name} (${p.username})` }));
    }
    select.value = current;
  }
  function wire() {
    $("ticket-filters").addEventListener("change", onFilterChange);
    $("ticket-filters").addEventListener("submit", (event) => { event.preventDefault(); onFilterChange(); });
    $("filter-reset").addEventListener("click", () => { history.replaceState(null, "", location.pathname); applyUrl(); loadTickets(); });
    $("alerts").addEventListener("click", (event) => {
      const button = event.target.closest(".alert-ack");
      if (button) { button.disabled = true; acknowledge(Number(button.dataset.alertId)); }
    });
    document.querySelector(".tabs").addEventListener("click", (event) => {
      const tab = event.target.closest("[role=tab]");
      if (tab) showTab(tab.dataset.tab);
    });
    if (me.lead) {
      $("followups").addEventListener("submit", (event) => {
        const form = event.target.closest(".followup-form");
        if (form) { event.preventDefault(); saveOutcome(form); }
      });
      $("followups-done").addEventListener("change", loadTasks);
    }
    window.addEventListener("popstate", () => { applyUrl(); loadTickets(); });
    setInterval(() => {
      T.paintCountdowns();
      for (const tr of document.querySelectorAll(".ticket-row")) {  // a countdown crossing its due time turns red
        const row = state.rows.get(tr.dataset.number);
        if (row && (T.sla(row).state || "ok") !== tr.dataset.sla) { renderQueue(); break; }
      }
    }, 500);
  }
  applyUrl();
  wire();
  loadAssignees().then(applyUrl);
  loadTickets();
  loadAlerts();
  T.live(onEvent);
})();
