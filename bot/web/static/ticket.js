// One ticket's page (/desk/tickets/TK…): vanilla JavaScript, no framework; the CSP forbids inline code.
//   head     – number, status, SLA marker, countdown, assignee, supervisor, customer
//   record   – the service record the bot collected (SPIN answers, preferences, classification)
//   history  – every event: status changes, notes, updates, assignments, notices, SLA
//   convs    – the linked conversations (handoffs) with their transcripts
//   notices  – what the customer was sent, or could not be sent
//   actions  – forms: progress update, internal note, assign, status + reason, resolve, reopen
//   live     – the page reloads the ticket when the desk WebSocket reports a change to it
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h, notify } = window.KefuDesk;
  const T = window.KefuTickets;
  const root = $("ticket");
  const number = root.dataset.number;
  const me = { username: root.dataset.username, role: root.dataset.role, lead: root.dataset.lead === "true" };
  const state = { ticket: null, busy: false, seq: 0, reloadTimer: null };

  async function attempt(call) {
    try { return await call; } catch (err) { if (err.status !== 401) notify(err.message || String(err)); return null; }
  }
  function fmt(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "boolean") return value ? "是 Yes" : "否 No";
    if (Array.isArray(value)) return value.length ? value.map(fmt).join("、") : "—";
    if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${fmt(v)}`).join("; ");
    return String(value);
  }
  const setText = (id, value) => { $(id).textContent = fmt(value); };

  // ---------------------------------------------------------------- head
  function renderHead(t) {
    const finished = T.FINISHED.has(t.status);
    const status = $("ticket-status");
    status.textContent = T.label.status(t.status);
    status.className = `badge status-badge status-${t.status}`;
    root.dataset.status = t.status;
    const marker = T.sla(t);
    const sla = $("ticket-sla");
    sla.hidden = !marker.state;
    sla.textContent = marker.text;
    sla.className = marker.state ? `sla sla-${marker.state}` : "sla";
    sla.dataset.sla = marker.state || "ok";
    setText("ticket-summary", t.summary);
    $("ticket-tier").textContent = T.label.tier(t.tier);
    $("ticket-tier").className = `badge badge-tier tier-${t.tier}`;
    $("ticket-grade").textContent = t.grade ? T.label.grade(t.grade) : "";
    $("ticket-grade").className = t.grade ? `badge badge-grade grade-${t.grade}` : "";
    $("ticket-due-at").textContent = T.time(t.due_at);
    $("ticket-due-at").setAttribute("datetime", t.due_at || "");
    const due = $("ticket-due");
    due.dataset.due = t.due_at || "";
    due.dataset.finished = String(finished);
    $("ticket-assignee").textContent = t.assignee_name || t.assignee || "未指派 Unassigned";
    $("ticket-assignee").dataset.username = t.assignee || "";
    setText("ticket-supervisor", t.supervisor);
    setText("ticket-customer", t.customer);
    setText("ticket-channel", t.channel);
    setText("ticket-language", t.language);
    $("ticket-created").textContent = T.time(t.created_at);
    $("ticket-responded").textContent = t.first_responded_at ? T.time(t.first_responded_at) : "—";
    setText("ticket-reopens", t.reopen_count ?? 0);
    setText("ticket-satisfaction", t.satisfaction ? `${t.satisfaction}/5` : null);
    $("ticket-escalated").hidden = !t.escalated;
    $("ticket-outcome").hidden = !t.result;
    setText("ticket-result", t.result);
    setText("ticket-improvement", t.improvement);
    document.title = `Kefu desk · ${t.number} · ${T.label.status(t.status)}`;
    T.paintCountdowns();
  }

  // ---------------------------------------------------------------- record
  const FIELD = {
    category: "类别 Category", order_number: "订单号 Order", product: "商品 Product", situation: "情况 Situation (S)",
    problem: "问题 Problem (P)", problem_since: "开始时间 Since", implication: "影响 Implication (I)",
    impacts: "影响范围 Impacts", need_payoff: "期望 Need-payoff (N)", need_points: "诉求 Needs",
    preferences: "偏好 Preferences", special_requests: "特殊要求 Special requests",
    classification_reasons: "分级依据 Classification", completeness: "完整度 Completeness", email: "邮箱 Email",
  };
  function renderRecord(record) {
    const rows = [];
    for (const [key, name] of Object.entries(FIELD)) {
      if (!record || !(key in record)) continue;
      let value = record[key];
      if (key === "completeness" && typeof value === "number") value = `${Math.round(value * 100)}%`;
      rows.push(h("dt", { text: name }), h("dd", { dataset: { field: key }, text: fmt(value) }));
    }
    $("ticket-record").replaceChildren(...(rows.length ? rows : [h("dd", { className: "empty", text: "没有服务记录 No record" })]));
  }

  // ---------------------------------------------------------------- history, conversations, notices
  function renderHistory(events) {
    const items = (events || []).map((e) => {
      const change = e.kind === "status" && e.from !== e.to ? `${T.label.status(e.from)} → ${T.label.status(e.to)}` : "";
      return h("li", { className: `event event-${e.kind}${e.visible_to_customer ? " is-visible" : ""}`, dataset: { kind: e.kind } },
        h("p", { className: "event-meta" },
          h("strong", { text: T.label.event(e.kind) }),
          change && h("span", { text: change }),
          h("span", { className: "muted", text: e.actor || "" }),
          e.visible_to_customer && h("span", { className: "badge badge-visible", text: "客户可见 Customer sees it" }),
          h("time", { className: "muted", text: T.time(e.at) })),
        e.note && h("p", { className: "pre", text: e.note }));
    });
    $("ticket-history").replaceChildren(...(items.length ? items : [h("li", { className: "empty", text: "暂无记录 No history" })]));
  }
  const KIND = { customer: "客户 Customer", agent: "坐席 Agent", bot: "机器人 Bot", note: "内部备注 Note", system: "系统 System" };
  function renderConversations(handoffs) {
    const blocks = (handoffs || []).map((hd) => h("details", { className: "conversation", dataset: { handoffId: hd.id }, open: true },
      h("summary", {},
        `#${hd.id} · ${fmt(hd.status)} · ${hd.agent ? fmt(hd.agent.display_name || hd.agent.username || hd.agent) : "—"} · `,
        h("time", { text: T.time(hd.created_at) }), hd.ended_at ? " – " : "", hd.ended_at && h("time", { text: T.time(hd.ended_at) })),
      h("ol", { className: "transcript" },
        ...(hd.messages || []).map((m) => h("li", { className: `line line-${m.kind}` },
          h("span", { className: "line-author", text: `${m.author || KIND[m.kind] || m.kind}：` }),
          h("span", { className: "pre", text: m.text || "" }),
          h("time", { className: "muted", text: ` ${T.time(m.created_at)}` }))))));
    $("ticket-conversations").replaceChildren(...(blocks.length ? blocks : [h("p", { className: "empty", text: "没有人工对话 No conversations with agents" })]));
  }
  function renderNotices(notices) {
    const items = (notices || []).map((n) => h("li", { className: `notice-item notice-${n.status}`, dataset: { noticeId: n.id, status: n.status, kind: n.kind } },
      h("p", { className: "row" },
        h("strong", { text: T.label.notice(n.kind) }),
        h("span", { className: `badge notice-status notice-status-${n.status}`, text: T.label.noticeStatus(n.status) }),
        n.via && h("span", { className: "muted", text: `via ${n.via}` }),
        h("time", { className: "muted", text: T.time(n.sent_at || n.due_at) })),
      h("p", { className: "pre", text: n.text || "" }),
      n.error && h("p", { className: "notice-error", text: n.error })));
    $("ticket-notices").replaceChildren(...(items.length ? items : [h("li", { className: "empty", text: "还没有通知 No notices yet" })]));
  }
  function renderFollowups(tasks) {
    $("ticket-followups-box").hidden = !(tasks && tasks.length);
    $("ticket-followups").replaceChildren(...(tasks || []).map((task) => h("li", { className: "followup", dataset: { taskId: task.id } },
      h("p", { className: "row" },
        h("span", { className: "badge", text: `评分 Score ${task.score ?? "—"}` }),
        task.done_at ? h("span", { text: `${T.label.outcome(task.outcome)} · ${T.time(task.done_at)}` })
          : h("span", { className: "countdown", dataset: { due: task.due_at || "", finished: "false" } })),
      task.note && h("p", { className: "pre", text: task.note }))));
  }

  // ---------------------------------------------------------------- actions
  function renderActions(t) {
    const closed = t.status === "closed";
    const resolved = t.status === "resolved";
    const mine = !t.assignee || t.assignee === me.username;
    const may = me.lead || mine;
    $("form-update").hidden = closed || !may;
    $("form-note").hidden = !may;
    $("form-resolve").hidden = resolved || closed || !may;
    $("form-reopen").hidden = !(resolved || closed) || !may;
    $("form-status").hidden = !may;
    $("actions-closed").hidden = !closed;
    const select = $("status-to");
    const allowed = (t.allowed_statuses || []).filter((s) => s !== "resolved");
    select.replaceChildren(...allowed.map((s) => h("option", { value: s, text: T.label.status(s) })));
    $("form-status").hidden = $("form-status").hidden || !allowed.length;
    // agents may only take an unassigned ticket; leads assign anyone
    $("assign-username").disabled = !me.lead;
    $("assign-me").hidden = !!t.assignee && t.assignee === me.username;
    $("form-assign").hidden = !me.lead && !!t.assignee && !mine;
    for (const button of document.querySelectorAll(".action-form button")) button.disabled = state.busy;
  }
  async function loadAssignees() {
    const select = $("assign-username");
    if (!me.lead) {
      select.replaceChildren(h("option", { value: me.username, text: `我 Me (${me.username})` }));
      return;
    }
    const people = await attempt(api("/desk/api/assignees"));
    if (!Array.isArray(people)) return;
    select.replaceChildren(h("option", { value: "", text: "未指派 Nobody" }),
      ...people.map((p) => h("option", { value: p.username, text: `${p.display_name} (${p.username}, ${p.role})` })));
    if (state.ticket) select.value = state.ticket.assignee || "";
  }
  async function act(action, body, done) {
    if (state.busy) return false;
    state.busy = true;
    if (state.ticket) renderActions(state.ticket);
    const answer = await attempt(api(`/desk/api/tickets/${encodeURIComponent(number)}/${action}`, body));
    state.busy = false;
    if (answer) { notify(done, "info"); await load(); } else if (state.ticket) renderActions(state.ticket);
    return !!answer;
  }
  const value = (id) => $(id).value.trim();
  const FORMS = {
    updates: () => [{ text: value("update-text") }, "已发送给客户 Sent to the customer.", ["update-text"]],
    notes: () => [{ text: value("note-text") }, "已添加备注 Note added.", ["note-text"]],
    assign: () => [{ username: $("assign-username").value, note: value("assign-note") }, "已指派 Assigned.", ["assign-note"]],
    status: () => [{ status: $("status-to").value, reason: value("status-reason") }, "状态已更新 Status changed.", ["status-reason"]],
    resolve: () => [{ result: value("resolve-result"), improvement: value("resolve-improvement") }, "已解决，客户将收到结果和评价邀请 Resolved: the customer gets the result and a rating question.", ["resolve-result", "resolve-improvement"]],
    reopen: () => [{ reason: value("reopen-reason") }, "已重新打开 Reopened.", ["reopen-reason"]],
  };
  async function submit(form) {
    const build = FORMS[form.dataset.action];
    if (!build) return;
    const [body, done, fields] = build();
    if (await act(form.dataset.action, body, done)) for (const id of fields) $(id).value = "";
  }

  // ---------------------------------------------------------------- load, live, boot
  async function load() {
    const seq = ++state.seq;
    const data = await attempt(api(`/desk/api/tickets/${encodeURIComponent(number)}`));
    if (seq !== state.seq || !data) return;
    state.ticket = data;
    renderHead(data);
    renderRecord(data.record);
    renderHistory(data.history);
    renderConversations(data.handoffs);
    renderNotices(data.notices);
    renderFollowups(data.followups);
    renderActions(data);
    if (me.lead) $("assign-username").value = data.assignee || "";
  }
  function scheduleReload() {
    clearTimeout(state.reloadTimer);
    state.reloadTimer = setTimeout(load, 300);
  }
  function onEvent(event) {
    if (event.type === "resync") scheduleReload();
    else if (event.type === "ticket" && event.ticket && event.ticket.number === number) scheduleReload();
    else if (event.type === "alert" && event.alert && event.alert.ticket === number) {
      if (!event.alert.acknowledged_at) notify(`${T.label.alert(event.alert.kind)}: ${event.alert.text || ""}`, "info");
      scheduleReload();
    }
  }
  function wire() {
    for (const form of document.querySelectorAll(".action-form")) {
      form.addEventListener("submit", (event) => { event.preventDefault(); submit(form); });
    }
    $("assign-me").addEventListener("click", () => act("assign", { username: me.username, note: value("assign-note") }, "已指派给你 Assigned to you."));
    setInterval(() => {
      T.paintCountdowns();
      if (state.ticket && (T.sla(state.ticket).state || "ok") !== $("ticket-sla").dataset.sla) renderHead(state.ticket);
    }, 500);
  }
  async function boot() {
    wire();
    await loadAssignees();  // first, so the assign form is whole before the agent can use it
    await load();
    T.live(onEvent);
  }
  boot();
})();
