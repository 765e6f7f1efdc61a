// Kefu agent console (/desk): vanilla JavaScript, no framework; the page's CSP forbids inline code.
//
// Modules, top to bottom:
//   util    – h() from desk_common.js (DOM nodes from text only), time and countdown formatting, labels.
//   notice  – toasts in #notice (role="status"); API failures show the server's `detail`.
//   api     – KefuDesk.api from desk_common.js: JSON bodies, X-CSRF-Token on POSTs, 401 -> /desk/login.
//   state   – the single in-memory store: me, agents, open handoffs, selection, messages, drafts, unread.
//   queue   – left column: open handoffs sorted by due_at, filters, live countdowns, unread marks.
//   conv    – middle column: header and actions, message list, reply and internal-note boxes.
//   packet  – right column, tab 1: the handoff packet the bot collected.
//   canned  – right column, tab 2: canned replies (levels, categories, search), inserted at the cursor.
//   assist  – right column, tab 3: knowledge-base suggestions for the latest customer message.
//   live    – WebSocket /desk/ws: queue and message events, ping every 25 s, reconnect with backoff.
//   boot    – event wiring and the first load.
(function () {
  "use strict";

  // ---------------------------------------------------------------- util
  const $ = (id) => document.getElementById(id);

  const { h } = window.KefuDesk;

  const pad = (n) => String(n).padStart(2, "0");
  // ISO-8601 → Date; a timestamp without a zone is read as UTC (the contract's timestamps are UTC).
  function parseTime(iso) {
    if (!iso) return null;
    const text = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso) ? iso + "Z" : iso;
    const date = new Date(text);
    return isNaN(date.getTime()) ? null : date;
  }
  const hhmm = (iso) => { const d = parseTime(iso); return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : "—"; };
  const fullDate = (iso) => { const d = parseTime(iso); return d ? d.toLocaleString() : ""; };
  const dateOnly = (iso) => { const d = parseTime(iso); return d ? d.toLocaleDateString() : "—"; };
  const timeEl = (iso, className) => h("time", { className, datetime: iso || "", title: fullDate(iso), text: hhmm(iso) });
  const dueMs = (hd) => { const d = parseTime(hd.due_at); return d ? d.getTime() : Infinity; };

  // "剩余 0:42:10 · due in 42 min" or "超时 Overdue 5 min".
  function countdown(iso) {
    const due = parseTime(iso);
    if (!due) return { text: "—", state: "" };
    const secs = Math.floor((due.getTime() - Date.now()) / 1000);
    if (secs < 0) return { text: `超时 Overdue ${Math.floor(-secs / 60)} min`, state: "overdue" };
    const clock = `${Math.floor(secs / 3600)}:${pad(Math.floor((secs % 3600) / 60))}:${pad(secs % 60)}`;
    return { text: `剩余 ${clock} · due in ${Math.floor(secs / 60)} min`, state: secs < 600 ? "soon" : "" };
  }
  function paintCountdown(node) {
    const c = countdown(node.dataset.due);
    if (node.textContent !== c.text) node.textContent = c.text;
    node.classList.toggle("overdue", c.state === "overdue");
    node.classList.toggle("soon", c.state === "soon");
    const item = node.closest(".queue-item");
    if (item) item.classList.toggle("is-overdue", c.state === "overdue");
  }

  const TIER = { urgent: "紧急 Urgent", normal: "普通 Normal", consultation: "咨询 Consultation" };
  const GRADE = { general: "一般投诉 General complaint", major: "重大投诉 Major complaint" };
  const STATUS = { queued: "排队中 Queued", active: "处理中 Active", resolved: "已解决 Resolved", handed_back: "已交还机器人 Handed back" };
  const KIND = { customer: "客户 Customer", agent: "坐席 Agent", bot: "机器人 Bot", note: "内部备注 Internal note", system: "系统 System" };
  const FEEDBACK = { helpful: "有帮助 Helpful", not_helpful: "没帮助 Not helpful", up: "👍 有帮助 Helpful", down: "👎 没帮助 Not helpful" };
  const FIELD = {
    category: "类别 Category", order_number: "订单号 Order", product: "商品 Product", situation: "情况 Situation",
    problem: "问题 Problem", implication: "影响 Implication", impacts: "影响范围 Impacts", need_payoff: "期望 Need-payoff",
    id: "编号 ID", name: "姓名 Name", phone: "电话 Phone", email: "邮箱 Email", vip: "VIP", first_seen: "首次来访 First seen",
  };
  const SPIN = ["situation", "problem", "implication", "need_payoff"];
  const label = (map, key) => (key === null || key === undefined ? "—" : map[key] || String(key));
  function fmtValue(v) {
    if (v === null || v === undefined || v === "") return "—";
    if (typeof v === "boolean") return v ? "是 Yes" : "否 No";
    if (Array.isArray(v)) return v.length ? v.map(fmtValue).join("、") : "—";
    if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}: ${fmtValue(x)}`).join("; ");
    return String(v);
  }
  const isOpen = (hd) => !!hd && (hd.status === "queued" || hd.status === "active");

  // ---------------------------------------------------------------- notice
  const { api, notify } = window.KefuDesk;
  // Awaits an API call; on failure shows its detail in #notice and resolves to null.
  async function attempt(call) {
    try {
      return await call;
    } catch (err) {
      if (err.status !== 401) notify(err.message || String(err));
      return null;
    }
  }

  // ---------------------------------------------------------------- state
  const state = {
    me: null,                 // {username, display_name, role}
    agents: [],               // [{username, display_name, role, online}]
    handoffs: new Map(),      // id -> HandoffSummary, open ones only
    filter: "all",            // all | mine | unclaimed
    unread: new Set(),        // handoff ids with messages the agent has not seen
    selected: null,           // id of the handoff in the middle column
    current: null,            // its HandoffSummary (kept after it closes)
    packet: null,
    messages: new Map(),      // id -> Message of the selected handoff
    drafts: new Map(),        // handoff id -> unsent reply text
    canned: [], level: null,  // canned-reply levels, key of the shown level
    assist: null,
    busy: false, sending: false, noting: false,
    selectSeq: 0, assistSeq: 0,
  };
  const baseTitle = document.title;
  const isMine = (hd) => !!(hd && hd.agent && state.me && hd.agent.username === state.me.username);
  const isAdmin = () => !!state.me && state.me.role === "admin";
  const language = () => (state.current && state.current.language === "en" ? "en" : "zh");

  // ---------------------------------------------------------------- queue
  function passesFilter(hd) {
    if (state.filter === "mine") return isMine(hd);
    if (state.filter === "unclaimed") return hd.status === "queued";
    return true;
  }
  function statusText(hd) {
    if (hd.status === "active" && hd.agent) return `${STATUS.active} · ${hd.agent.display_name}`;
    if (hd.status === "queued") {
      const position = hd.queue_position ? ` #${hd.queue_position}` : "";
      const assigned = hd.agent ? ` · 指派给 for ${hd.agent.display_name}` : "";
      return STATUS.queued + position + assigned;
    }
    return label(STATUS, hd.status);
  }
  function preview(last) {
    if (!last) return h("p", { className: "qi-preview empty-preview", text: "暂无消息 No messages yet" });
    return h("p", { className: "qi-preview", title: last.text },
      h("span", { className: "qi-preview-kind", text: label(KIND, last.kind).split(" ")[0] + "：" }),
      last.text, " ", timeEl(last.created_at, "qi-time"));
  }
  function queueItem(hd) {
    const selected = hd.id === state.selected;
    const unread = state.unread.has(hd.id);
    const classes = ["queue-item", `tier-${hd.tier}`, selected && "is-selected", unread && "is-unread", isMine(hd) && "is-mine"];
    const item = h("li", {
      className: classes.filter(Boolean).join(" "), tabindex: "0", role: "button",
      "aria-current": selected ? "true" : null, dataset: { handoffId: hd.id, status: hd.status },
    },
      h("div", { className: "qi-top" },
        h("span", { className: "qi-name", text: hd.customer_name || "访客 Visitor" }),
        hd.vip && h("span", { className: "badge badge-vip", text: "VIP" }),
        unread && h("span", { className: "unread-dot", title: "新消息 New messages", "aria-label": "新消息 New messages" }),
        h("span", { className: `badge badge-tier tier-${hd.tier}`, text: label(TIER, hd.tier) })),
      h("p", { className: "qi-reason", text: hd.reason_label || hd.reason }),
      h("p", { className: "qi-status" },
        hd.complaint_grade && h("span", { className: `badge badge-grade grade-${hd.complaint_grade}`, text: label(GRADE, hd.complaint_grade) }),
        h("span", { className: `status status-${hd.status}`, text: statusText(hd) })),
      preview(hd.last_message),
      h("p", { className: "countdown", dataset: { due: hd.due_at || "" }, title: "时限 Due " + fullDate(hd.due_at) }));
    paintCountdown(item.querySelector(".countdown"));
    return item;
  }
  function renderQueue() {
    const list = $("queue");
    const active = document.activeElement;
    const focusId = active && active.classList && active.classList.contains("queue-item") ? active.dataset.handoffId : null;
    const open = [...state.handoffs.values()].sort((a, b) => dueMs(a) - dueMs(b) || a.id - b.id);
    const shown = open.filter(passesFilter);
    list.replaceChildren(...shown.map(queueItem));
    $("queue-count").textContent = String(open.length);
    const empty = $("queue-empty");
    empty.hidden = shown.length > 0;
    empty.textContent = open.length ? "没有符合筛选的对话 Nothing matches this filter" : "队列为空 No open conversations";
    if (focusId) {
      const again = list.querySelector(`[data-handoff-id="${CSS.escape(focusId)}"]`);
      if (again) again.focus();
    }
    const unread = [...state.unread].filter((id) => state.handoffs.has(id)).length;
    document.title = unread ? `(${unread}) ${baseTitle}` : baseTitle;
  }
  async function loadQueue() {
    const list = await attempt(api("/desk/api/handoffs"));
    if (!Array.isArray(list)) return;
    state.handoffs = new Map(list.filter(isOpen).map((hd) => [hd.id, hd]));
    for (const id of [...state.unread]) if (!state.handoffs.has(id)) state.unread.delete(id);
    const fresh = state.handoffs.get(state.selected);
    if (fresh) { state.current = fresh; renderConversation(); }
    renderQueue();
  }
  // A new or changed handoff (from an event or our own action); closed ones leave the queue.
  // Changes to the selected one are announced unless `quiet` (our own action says so itself).
  function upsertHandoff(hd, quiet) {
    const previous = state.current;
    if (isOpen(hd)) state.handoffs.set(hd.id, hd);
    else { state.handoffs.delete(hd.id); state.unread.delete(hd.id); }
    if (state.selected === hd.id) {
      state.current = hd;
      if (!previous || quiet) { /* first summary of this selection, or our own change */ }
      else if (isOpen(previous) && !isOpen(hd)) notify(`此对话已结束：${label(STATUS, hd.status)} This conversation has closed.`, "info");
      else if (isMine(previous) && !isMine(hd) && isOpen(hd) && hd.agent)
        notify(`此对话现由 ${hd.agent.display_name} 处理 Now handled by ${hd.agent.display_name}.`, "info");
      renderConversation();
    }
    renderQueue();
  }

  // ---------------------------------------------------------------- conv
  async function select(id) {
    if (state.selected !== null) state.drafts.set(state.selected, $("reply-text").value);
    state.selected = id;
    state.current = state.handoffs.get(id) || null;
    state.packet = null;
    state.messages = new Map();
    state.assist = null;
    state.unread.delete(id);
    state.selectSeq += 1;
    history.replaceState(null, "", `#${id}`);
    const box = $("reply-text");
    box.value = state.drafts.get(id) || "";
    box.dispatchEvent(new Event("input"));
    renderQueue(); renderConversation(); renderMessages(true); renderPacket(); renderCanned(); renderAssist();
    await loadConversation();
    loadAssist();
  }
  // (Re)loads the selected handoff: summary, packet and every message (merged by id).
  async function loadConversation() {
    const id = state.selected, seq = state.selectSeq;
    if (id === null) return;
    const data = await attempt(api(`/desk/api/handoffs/${encodeURIComponent(id)}`));
    if (seq !== state.selectSeq) return;
    if (!data) { renderMessages(false); return; }
    state.packet = data.packet || null;
    for (const m of data.messages || []) state.messages.set(m.id, m);
    if (!state.current) state.current = data.handoff;
    upsertHandoff(data.handoff);
    renderConversation(); renderMessages(false); renderPacket(); renderCanned();
  }
  function renderConversation() {
    const hd = state.current;
    $("conv-empty").hidden = !!hd;
    $("conv").hidden = !hd;
    if (!hd) return;
    $("conv").classList.toggle("is-closed", !isOpen(hd));
    const open = isOpen(hd), mine = isMine(hd), power = mine || isAdmin();
    $("conv-customer").textContent = hd.customer_name || "访客 Visitor";
    $("conv-vip").hidden = !hd.vip;
    $("conv-ticket").textContent = hd.ticket_number ? `工单 Ticket ${hd.ticket_number}` : "无工单 No ticket";
    $("conv-status").textContent = statusText(hd);
    const due = $("conv-due");
    if (open && hd.due_at) { due.dataset.due = hd.due_at; due.title = "时限 Due " + fullDate(hd.due_at); paintCountdown(due); }
    else { delete due.dataset.due; due.textContent = label(TIER, hd.tier); due.className = "due"; }
    const buttons = { claim: !open, transfer: !open || !power, assign: !open || (hd.status !== "queued" && !power), resolve: !open || !power, handback: !open || !power };
    $("btn-claim").hidden = !open || (hd.status === "active" && mine);
    for (const [name, off] of Object.entries(buttons)) $(`btn-${name}`).disabled = off || state.busy;
    $("agent-select").disabled = $("transfer-note").disabled = (buttons.transfer && buttons.assign) || state.busy;
    $("btn-transfer").title = buttons.transfer ? "仅处理人或管理员可转交 Owner or admin only" : "";
    const banner = $("conv-banner");
    banner.hidden = open;
    banner.textContent = hd.status === "resolved"
      ? "此对话已解决，客户将收到 1–5 分评价邀请。Resolved: the customer is asked for a 1–5 score."
      : "已交还机器人，机器人继续服务。Handed back: the bot has resumed the conversation.";
    renderComposer();
  }
  function renderComposer() {
    const hd = state.current;
    const canReply = isOpen(hd) && hd.status === "active" && isMine(hd);
    const box = $("reply-text");
    box.disabled = !canReply;
    $("reply-send").disabled = !canReply || state.sending || !box.value.trim();
    let hint = "";
    if (!isOpen(hd)) hint = "对话已结束，无法回复 The conversation is closed.";
    else if (!canReply) hint = "先接入才能回复 Claim it to reply" + (hd.status === "active" && hd.agent ? `（当前 now with ${hd.agent.display_name}）` : "");
    $("reply-hint").textContent = hint;
    $("note-add").disabled = state.noting || !$("note-text").value.trim();
  }
  function messageItem(m) {
    const kind = KIND[m.kind] ? m.kind : "system";
    const author = m.author || (kind === "customer" && state.current ? state.current.customer_name : label(KIND, kind));
    return h("li", { className: `message message-${kind}`, dataset: { kind, messageId: m.id } },
      h("div", { className: "message-meta" },
        h("span", { className: "message-author", text: author }),
        kind === "note" && h("span", { className: "badge badge-note", text: "内部 Internal" }),
        timeEl(m.created_at, "message-time")),
      h("p", { className: "message-text", text: m.text }));
  }
  function renderMessages(loading) {
    const list = $("messages");
    const messages = [...state.messages.values()].sort((a, b) => a.id - b.id);
    if (!messages.length) list.replaceChildren(h("li", { className: "empty", text: loading ? "加载中 Loading…" : "暂无消息 No messages yet" }));
    else list.replaceChildren(...messages.map(messageItem));
    list.scrollTop = list.scrollHeight;
  }
  // Adds one message of the selected handoff in id order; false when it is already shown.
  function addMessage(m, scroll) {
    if (state.messages.has(m.id)) return false;
    state.messages.set(m.id, m);
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
    const placeholder = list.querySelector(".empty");
    if (placeholder) placeholder.remove();
    const later = [...list.children].find((node) => Number(node.dataset.messageId) > m.id);
    list.insertBefore(messageItem(m), later || null);
    if (scroll || nearBottom) list.scrollTop = list.scrollHeight;
    return true;
  }
  function notePreview(id, m) {
    const hd = state.handoffs.get(id);
    if (hd) hd.last_message = { kind: m.kind, text: m.text, created_at: m.created_at };
  }
  async function postText(path, boxId, flag) {
    const box = $(boxId), text = box.value.trim(), id = state.selected;
    if (!text || id === null || state[flag]) return;
    state[flag] = true; renderComposer();
    const m = await attempt(api(`/desk/api/handoffs/${encodeURIComponent(id)}/${path}`, { text }));
    state[flag] = false;
    if (m && state.selected === id) {
      addMessage(m, true);
      box.value = "";
      box.dispatchEvent(new Event("input"));
      notePreview(id, m); renderQueue();
    }
    if (m) state.drafts.delete(id);
    renderComposer();
    if (!box.disabled) box.focus();
  }
  // Claim, assign, transfer, resolve or hand back the selected handoff.
  async function act(path, body, done) {
    const id = state.selected;
    if (id === null || state.busy) return;
    state.busy = true; renderConversation();
    const hd = await attempt(api(`/desk/api/handoffs/${encodeURIComponent(id)}/${path}`, body || {}));
    state.busy = false;
    if (hd) { upsertHandoff(hd, true); notify(done, "info"); }
    renderConversation();
    return hd;
  }
  function chosenAgent() {
    const username = $("agent-select").value;
    if (!username) notify("请先选择坐席 Choose an agent first.");
    return username;
  }
  function renderAgents() {
    const select = $("agent-select"), previous = select.value;
    const agents = [...state.agents].sort((a, b) => Number(b.online) - Number(a.online) || a.display_name.localeCompare(b.display_name));
    select.replaceChildren(h("option", { value: "", text: "选择坐席 Choose an agent" }), ...agents.map((a) => h("option", {
      value: a.username, dataset: { online: a.online ? "true" : "false" },
      text: `${a.display_name} (${a.username}) · ${a.online ? "● 在线 online" : "○ 离线 offline"}${state.me && a.username === state.me.username ? " · 我 me" : ""}`,
    })));
    if (agents.some((a) => a.username === previous)) select.value = previous;
  }
  async function loadAgents() {
    const agents = await attempt(api("/desk/api/agents"));
    if (!Array.isArray(agents)) return;
    state.agents = agents;
    if (document.activeElement !== $("agent-select")) renderAgents(); // never rebuild an open dropdown
  }

  // ---------------------------------------------------------------- packet
  const section = (title, ...body) => h("section", { className: "packet-section" }, h("h3", { text: title }), ...body);
  const emptyNote = (text) => h("p", { className: "empty", text });
  function fields(rows) {
    return h("dl", { className: "fields" }, rows.map(([name, value]) => [h("dt", { text: name }), h("dd", { text: fmtValue(value) })]));
  }
  function entryList(className, items, render, empty) {
    return items && items.length ? h("ol", { className: `packet-list ${className}` }, items.map((item) => h("li", null, render(item)))) : emptyNote(empty);
  }
  const score = (n) => (typeof n === "number" ? n.toFixed(2) : fmtValue(n));
  function renderPacket() {
    const box = $("packet"), hd = state.current, p = state.packet;
    if (!hd) { box.replaceChildren(emptyNote("未选择对话 No conversation selected")); return; }
    if (!p) { box.replaceChildren(emptyNote("加载中 Loading…")); return; }
    const record = p.service_record || null;
    const customer = p.customer || {};
    box.replaceChildren(
      h("div", { className: "next-step" }, h("h3", { text: "建议下一步 Suggested next step" }), h("p", { text: p.suggested_next_step || "—" })),
      section("转接 Handoff", fields([
        ["工单 Ticket", p.ticket_number || hd.ticket_number],
        ["原因 Reason", hd.reason_label || p.reason], ["级别 Tier", label(TIER, p.urgency_tier || hd.tier)],
        ["投诉 Complaint", p.complaint_grade || hd.complaint_grade ? label(GRADE, p.complaint_grade || hd.complaint_grade) : "无 None"],
        ["时限 Due", fullDate(p.due_at || hd.due_at)], ["渠道 Channel", p.channel || hd.channel],
        ["语言 Language", p.language || hd.language], ["转接时间 Created", fullDate(p.created_at || hd.created_at)],
      ])),
      section("客户 Customer", fields(["name", "id", "phone", "email", "vip", "first_seen"].map((k) =>
        [FIELD[k], k === "first_seen" ? fullDate(customer[k]) : customer[k]]))),
      section("服务记录 Service record", record
        ? fields(Object.keys(record).filter((k) => !SPIN.includes(k)).map((k) => [FIELD[k] || k.replace(/_/g, " "), record[k]]))
        : emptyNote("无服务记录 No service record")),
      section("SPIN 问答 SPIN answers", record && SPIN.some((k) => record[k])
        ? fields(SPIN.map((k) => [FIELD[k], record[k]])) : emptyNote("未收集 Not collected")),
      section("历史工单 Earlier tickets", entryList("tickets", p.earlier_tickets, (t) => [
        h("div", { className: "row" }, h("strong", { text: t.number }), h("span", { className: "badge", text: t.status }),
          h("span", { className: "muted", title: fullDate(t.created_at), text: dateOnly(t.created_at) })),
        h("p", { text: t.summary }),
        t.satisfaction != null && h("p", { className: "muted", text: `满意度 Satisfaction ${t.satisfaction}/5` }),
      ], "无历史工单 No earlier tickets")),
      section("知识库回答 KB answers", entryList("kb", p.kb_answers, (k) => [
        h("div", { className: "row" }, timeEl(k.at, "muted"), h("span", { className: `badge outcome-${k.outcome}`, text: k.outcome }),
          h("span", { className: "score", text: `分数 Score ${score(k.confidence)}` })),
        h("p", { text: k.query }),
        h("p", { className: "muted", text: `条目 Entry ${fmtValue(k.entry_id)} · 反馈 Feedback ${k.feedback ? label(FEEDBACK, k.feedback) : "无 none"}` }),
      ], "无知识库回答 No KB answers")),
      section("意图 Intent timeline", entryList("intents", p.intents, (i) => [
        h("div", { className: "row" }, timeEl(i.at, "muted"), h("strong", { text: i.intent }),
          typeof i.confidence === "number" && h("meter", { min: "0", max: "1", value: String(i.confidence), title: score(i.confidence) }),
          h("span", { className: "score", text: score(i.confidence) })),
        h("p", { text: i.text }),
      ], "无意图记录 No intents")),
      section("完整记录 Transcript", entryList("transcript", p.transcript, (t) => [
        h("div", { className: `row speaker-${t.speaker}` }, h("strong", { text: label(KIND, t.speaker) }),
          timeEl(t.at, "muted"),
          t.channel && h("span", { className: "muted", text: t.channel })),
        h("p", { className: "transcript-text", text: t.text }),
      ], "无记录 No transcript")));
  }

  // ---------------------------------------------------------------- canned
  function replyMatches(reply, query) {
    return !query || [reply.title, reply.zh, reply.en, reply.id].some((s) => String(s || "").toLowerCase().includes(query));
  }
  function renderCanned() {
    const query = $("canned-search").value.trim().toLowerCase();
    for (const button of $("canned-levels").children) button.setAttribute("aria-pressed", String(button.dataset.level === state.level));
    // While searching, every level is searched; otherwise only the chosen level is shown.
    const levels = state.canned.filter((l) => query || l.key === state.level);
    const groups = [];
    for (const level of levels) {
      for (const cat of level.categories || []) {
        const replies = (cat.replies || []).filter((r) => replyMatches(r, query));
        if (!replies.length) continue;
        groups.push(h("section", { className: "canned-category", dataset: { level: level.key, category: cat.key } },
          h("h3", { text: query ? `${level.title} · ${cat.title}` : cat.title }),
          h("ul", { className: "canned-list" }, replies.map((r) => h("li", null,
            h("button", { type: "button", className: "canned-reply", dataset: { replyId: r.id }, title: "插入到回复框 Insert into the reply box" },
              h("strong", { text: r.title }), h("span", { className: "canned-text", text: r[language()] || r.zh || r.en })))))));
      }
    }
    $("canned").replaceChildren(...(groups.length ? groups : [emptyNote(query ? "没有匹配的话术 No matching replies" : "暂无话术 No canned replies")]));
  }
  async function loadCanned() {
    const data = await attempt(api("/desk/api/canned-replies"));
    state.canned = (data && Array.isArray(data.levels)) ? data.levels : [];
    state.level = state.canned.length ? state.canned[0].key : null;
    $("canned-levels").replaceChildren(...state.canned.map((l) =>
      h("button", { type: "button", className: "canned-level", dataset: { level: l.key }, "aria-pressed": "false", text: l.title })));
    renderCanned();
  }
  function findReply(id) {
    for (const level of state.canned) for (const cat of level.categories || []) for (const r of cat.replies || []) if (r.id === id) return r;
    return null;
  }
  // Puts `text` into #reply-text at the cursor (replacing any selection); never sends it.
  function insertReply(text) {
    if (!state.current) { notify("请先选择对话 Select a conversation first."); return; }
    const box = $("reply-text");
    const start = box.selectionStart ?? box.value.length, end = box.selectionEnd ?? start;
    box.setRangeText(text, start, end, "end");
    box.dispatchEvent(new Event("input"));
    if (!box.disabled) box.focus();
  }

  // ---------------------------------------------------------------- assist
  let assistTimer = null;
  function scheduleAssist() { clearTimeout(assistTimer); assistTimer = setTimeout(loadAssist, 300); }
  async function loadAssist() {
    const id = state.selected, seq = ++state.assistSeq;
    if (id === null) return;
    $("assist-query").textContent = "加载中 Loading…";
    const data = await attempt(api(`/desk/api/handoffs/${encodeURIComponent(id)}/assist`));
    if (seq !== state.assistSeq || id !== state.selected) return;
    state.assist = data || { query: "", suggestions: [] };
    renderAssist();
  }
  function renderAssist() {
    const list = $("assist"), data = state.assist;
    if (!state.current) { $("assist-query").textContent = "未选择对话 No conversation selected"; list.replaceChildren(); return; }
    if (!data) { $("assist-query").textContent = "加载中 Loading…"; list.replaceChildren(); return; }
    $("assist-query").textContent = data.query ? `客户最新消息 Latest customer text: “${data.query}”` : "暂无客户消息 No customer text yet";
    const suggestions = Array.isArray(data.suggestions) ? data.suggestions : [];
    if (!suggestions.length) { list.replaceChildren(h("li", { className: "empty", text: "没有相关知识 No matching knowledge" })); return; }
    list.replaceChildren(...suggestions.map((s, index) => h("li", { className: "assist-item", dataset: { entryId: s.entry_id, index } },
      h("p", { className: "assist-question", text: s.question }),
      h("p", { className: "assist-answer", text: s.answer }),
      h("div", { className: "row" },
        h("span", { className: "assist-source", text: `来源 Source: ${fmtValue(s.source)}` }),
        h("span", { className: "assist-score score", text: `分数 Score ${score(s.score)}` }),
        h("button", { type: "button", className: "btn btn-small assist-insert", text: "插入 Insert" })))));
  }

  // ---------------------------------------------------------------- live
  const live = { ws: null, retry: 0, timer: null, ping: null };
  function setWsStatus(open) {
    const badge = $("ws-status");
    badge.dataset.state = open ? "open" : "closed";
    badge.textContent = open ? "已连接 Live" : "重新连接中 Reconnecting…";
    badge.title = open ? "实时更新已连接 Live updates on" : "实时更新已断开，正在重连 Live updates off, reconnecting";
  }
  function connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/desk/ws`;
    let ws;
    try { ws = new WebSocket(url); } catch (err) { scheduleReconnect(); return; }
    live.ws = ws;
    ws.addEventListener("open", () => {
      live.retry = 0;
      setWsStatus(true);
      clearInterval(live.ping);
      live.ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" })); }, 25000);
      resync();
    });
    ws.addEventListener("message", (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (err) { return; }
      handleEvent(data);
    });
    ws.addEventListener("close", (event) => {
      if (live.ws !== ws) return;
      // 4401: the session ended (signed out elsewhere, disabled, expired, password changed).
      if (event.code === 4401) { clearInterval(live.ping); location.assign("/desk/login"); return; }
      clearInterval(live.ping);
      setWsStatus(false);
      scheduleReconnect();
    });
  }
  // Exponential backoff: 1 s, 2 s, 4 s … capped at 30 s.
  function scheduleReconnect() {
    const delay = Math.min(30000, 1000 * 2 ** live.retry);
    live.retry = Math.min(live.retry + 1, 10);
    // A socket that keeps failing may mean the session expired: any API call then goes to the login.
    if (live.retry >= 2) api("/desk/api/me").catch(() => {});
    clearTimeout(live.timer);
    live.timer = setTimeout(connect, delay);
  }
  // After (re)connecting: reload everything events may have changed while we were away.
  function resync() {
    loadQueue();
    if (state.selected !== null) { loadConversation(); loadAssist(); }
  }
  function handleEvent(event) {
    if (!event || typeof event !== "object") return;
    if (event.type === "queue" && event.handoff) upsertHandoff(event.handoff);
    else if (event.type === "message" && event.message) onMessage(Number(event.handoff_id ?? event.message.handoff_id), event.message);
  }
  function onMessage(id, m) {
    notePreview(id, m);
    if (id === state.selected) {
      if (addMessage(m, false) && m.kind === "customer") scheduleAssist();
    } else if (state.handoffs.has(id)) {
      state.unread.add(id);
    }
    if (state.handoffs.has(id)) renderQueue();
  }

  // ---------------------------------------------------------------- boot
  function showTab(name) {
    for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(on));
      $(`panel-${tab.dataset.tab}`).hidden = !on;
    }
    if (name === "assist" && state.selected !== null && !state.assist) loadAssist();
  }
  const onCtrlEnter = (id, run) => $(id).addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
  });
  function wire() {
    const queue = $("queue");
    const pick = (event) => { const item = event.target.closest(".queue-item"); if (item) select(Number(item.dataset.handoffId)); };
    queue.addEventListener("click", pick);
    queue.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(event); } });
    $("queue-filter").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-filter]");
      if (!button) return;
      state.filter = button.dataset.filter;
      for (const b of $("queue-filter").children) b.setAttribute("aria-pressed", String(b === button));
      renderQueue();
    });
    $("btn-claim").addEventListener("click", async () => { if (await act("claim", {}, "已接入 Claimed.")) $("reply-text").focus(); });
    $("btn-assign").addEventListener("click", () => { const agent = chosenAgent(); if (agent) act("assign", { agent }, "已指派 Assigned."); });
    $("btn-transfer").addEventListener("click", async () => {
      const agent = chosenAgent(), note = $("transfer-note").value.trim();
      if (agent && await act("transfer", note ? { agent, note } : { agent }, "已转交 Transferred.")) $("transfer-note").value = "";
    });
    $("btn-resolve").addEventListener("click", () => act("resolve", {}, "已解决 Resolved."));
    $("btn-handback").addEventListener("click", () => act("hand-back", {}, "已交还机器人 Handed back to the bot."));
    $("agent-select").addEventListener("blur", renderAgents);
    $("reply-send").addEventListener("click", () => postText("messages", "reply-text", "sending"));
    $("note-add").addEventListener("click", () => postText("notes", "note-text", "noting"));
    onCtrlEnter("reply-text", () => postText("messages", "reply-text", "sending"));
    onCtrlEnter("note-text", () => postText("notes", "note-text", "noting"));
    $("reply-text").addEventListener("input", () => { $("reply-count").textContent = `${$("reply-text").value.length}/2000`; renderComposer(); });
    $("note-text").addEventListener("input", renderComposer);
    document.querySelector(".tabs").addEventListener("click", (event) => {
      const tab = event.target.closest("[role=tab]");
      if (tab) showTab(tab.dataset.tab);
    });
    $("canned-levels").addEventListener("click", (event) => {
      const button = event.target.closest(".canned-level");
      if (button) { state.level = button.dataset.level; $("canned-search").value = ""; renderCanned(); }
    });
    $("canned-search").addEventListener("input", renderCanned);
    $("canned").addEventListener("click", (event) => {
      const button = event.target.closest(".canned-reply");
      const reply = button && findReply(button.dataset.replyId);
      if (reply) insertReply(reply[language()] || reply.zh || reply.en || "");
    });
    $("assist").addEventListener("click", (event) => {
      const button = event.target.closest(".assist-insert");
      const item = button && button.closest(".assist-item");
      const s = item && state.assist && state.assist.suggestions[Number(item.dataset.index)];
      if (s) insertReply(`${s.answer} (来源 ${s.source})`);
    });
    $("assist-refresh").addEventListener("click", loadAssist);
    // Twice a second, so the shown second never lags or skips; unchanged text is not rewritten.
    setInterval(() => document.querySelectorAll("[data-due]").forEach(paintCountdown), 500);
    setInterval(loadAgents, 60000);
  }
  async function boot() {
    wire();
    const me = await attempt(api("/desk/api/me"));
    state.me = me || { username: "", display_name: $("agent-name").textContent, role: $("agent-role").textContent };
    connect();
    await Promise.all([loadQueue(), loadAgents(), loadCanned()]);
    const wanted = Number(location.hash.slice(1));
    if (wanted && state.selected === null) select(wanted);
  }
  boot();
})();
