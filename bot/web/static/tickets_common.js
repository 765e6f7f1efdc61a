// What the tickets pages share (after desk_common.js, before tickets.js / ticket.js):
//   KefuTickets.label.{status,tier,grade,alert,notice,event,outcome,severity}(key)  zh/en labels
//   KefuTickets.time(iso) / date(iso)       local date-time text of an ISO UTC timestamp
//   KefuTickets.countdown(iso, finished)    {text, state: ""|"soon"|"overdue"} for a due time
//   KefuTickets.sla(row)                    {state: "at_risk"|"overdue"|"", text}: the SLA marker
//   KefuTickets.slaBadge(row)               a <span class="sla ..."> marker node (or null)
//   KefuTickets.paintCountdowns()           repaints every [data-due] node (called twice a second)
//   KefuTickets.live(onEvent)               the desk's WebSocket with reconnect; events to onEvent
// Text only, never HTML: every node comes from KefuDesk.h.
(function () {
  "use strict";

  const { h } = window.KefuDesk;
  const FINISHED = new Set(["resolved", "closed"]);
  const STATUS = {
    open: "新建 Open", pending_agent: "待接手 Waiting for an agent", in_progress: "处理中 In progress",
    waiting_customer: "待客户补充 Waiting for the customer", resolved: "已解决 Resolved", closed: "已关闭 Closed",
  };
  const TIER = { urgent: "紧急 Urgent", normal: "普通 Normal", consultation: "咨询 Consultation" };
  const GRADE = { general: "一般投诉 General complaint", major: "重大投诉 Major complaint" };
  const ALERT = {
    sla_at_risk: "SLA 即将超时 / at risk", sla_breach: "SLA 已超时 / breached", undeliverable: "无法送达 / undeliverable",
    followup_task: "二次回访 / follow-up task", followup_overdue: "回访逾期 / follow-up overdue",
    customer_info: "客户补充信息 / customer added information", customer_message: "客户留言 / customer message",
    reopened: "客户重新打开 / reopened", qa_red_card: "质检红牌 / QA red card",
  };
  const SEVERITY = { info: "提示 Info", warning: "警告 Warning", critical: "严重 Critical" };
  const NOTICE = {
    progress_update: "进展更新 Progress update", progress_notice: "定期进展 Progress notice", result: "处理结果 Result",
    csat: "满意度调查 CSAT question", csat_reminder: "满意度提醒 CSAT reminder", second_followup: "二次回访 Second follow-up",
    vip_checkin: "VIP 回访 VIP check-in", acknowledgement: "已收到 Acknowledgement", ticket_status: "进度答复 Status answer",
    sla_at_risk: "SLA 即将超时 SLA at risk", sla_breach: "SLA 已超时 SLA breached", followup_task: "回访任务 Follow-up task",
    qa_red_card: "质检红牌 QA red card",
  };
  const NOTICE_STATUS = {
    pending: "待发送 Pending", sending: "发送中 Sending", sent: "已发送 Sent", undeliverable: "无法送达 Undeliverable",
    cancelled: "已取消 Cancelled",
  };
  const EVENT = {
    status: "状态 Status", rating: "评分 Rating", note: "内部备注 Internal note", progress: "进展更新 Progress update",
    customer: "客户 Customer", assignment: "指派 Assignment", notice: "通知 Notice", sla: "SLA",
  };
  const OUTCOME = { solved: "已解决 Solved", not_solved: "未解决 Not solved", unreachable: "联系不上 Unreachable" };
  const of = (map) => (key) => (key === null || key === undefined || key === "" ? "—" : map[key] || String(key));
  const label = Object.freeze({
    status: of(STATUS), tier: of(TIER), grade: of(GRADE), alert: of(ALERT), severity: of(SEVERITY),
    notice: of(NOTICE), noticeStatus: of(NOTICE_STATUS), event: of(EVENT), outcome: of(OUTCOME),
  });

  // ISO-8601 → Date; a timestamp without a zone is read as UTC (the API's timestamps are UTC).
  function parse(iso) {
    if (!iso) return null;
    const text = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso) ? iso + "Z" : iso;
    const date = new Date(text);
    return isNaN(date.getTime()) ? null : date;
  }
  const time = (iso) => { const d = parse(iso); return d ? d.toLocaleString() : "—"; };
  const pad = (n) => String(n).padStart(2, "0");
  function span(secs) {
    const days = Math.floor(secs / 86400), hours = Math.floor((secs % 86400) / 3600);
    const minutes = Math.floor((secs % 3600) / 60);
    if (days) return { zh: `${days}天${hours}小时`, en: `${days} d ${hours} h` };
    if (hours) return { zh: `${hours}小时${minutes}分`, en: `${hours} h ${minutes} min` };
    return { zh: `${minutes}分${pad(secs % 60)}秒`, en: `${minutes} min ${pad(secs % 60)} s` };
  }
  // "剩余 2小时5分 · due in 2 h 5 min", or "已超时 15分 · overdue 15 min"; finished: "已完成 · done".
  function countdown(iso, finished) {
    const due = parse(iso);
    if (finished) return { text: "已完成 · done", state: "" };
    if (!due) return { text: "—", state: "" };
    const secs = Math.floor((due.getTime() - Date.now()) / 1000);
    if (secs < 0) { const s = span(-secs); return { text: `已超时 ${s.zh} · overdue ${s.en}`, state: "overdue" }; }
    const s = span(secs);
    return { text: `剩余 ${s.zh} · due in ${s.en}`, state: secs < 3600 ? "soon" : "" };
  }
  // The ticket's SLA marker: overdue (past due and unfinished) beats at risk (the server's 80 % mark).
  function sla(row) {
    if (!row || FINISHED.has(row.status)) return { state: "", text: "" };
    const due = parse(row.due_at);
    if (row.overdue || (due && due.getTime() < Date.now())) return { state: "overdue", text: "已超时 · overdue" };
    if (row.at_risk || row.sla_state === "at_risk") return { state: "at_risk", text: "即将超时 · at risk" };
    return { state: "", text: "" };
  }
  function slaBadge(row) {
    const marker = sla(row);
    if (!marker.state) return null;
    return h("span", { className: `sla sla-${marker.state}`, dataset: { sla: marker.state }, text: marker.text });
  }
  function paintCountdowns() {
    for (const node of document.querySelectorAll("[data-due]")) {
      const c = countdown(node.dataset.due, node.dataset.finished === "true");
      if (node.textContent !== c.text) node.textContent = c.text;
      node.classList.toggle("overdue", c.state === "overdue");
      node.classList.toggle("soon", c.state === "soon");
    }
  }

  // The desk WebSocket: reconnects with backoff (1 s … 30 s); 4401 (session ended) → login.
  function live(onEvent) {
    const state = { retry: 0, ping: null, timer: null, ws: null };
    const badge = document.getElementById("ws-status");
    const show = (open) => {
      if (!badge) return;
      badge.dataset.state = open ? "open" : "closed";
      badge.textContent = open ? "已连接 Live" : "重新连接中 Reconnecting…";
    };
    function connect() {
      const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/desk/ws`;
      let ws;
      try { ws = new WebSocket(url); } catch (err) { later(); return; }
      state.ws = ws;
      ws.addEventListener("open", () => {
        state.retry = 0;
        show(true);
        clearInterval(state.ping);
        state.ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" })); }, 25000);
        onEvent({ type: "resync" });
      });
      ws.addEventListener("message", (event) => {
        let data;
        try { data = JSON.parse(event.data); } catch (err) { return; }
        if (data && typeof data === "object") onEvent(data);
      });
      ws.addEventListener("close", (event) => {
        if (state.ws !== ws) return;
        clearInterval(state.ping);
        if (event.code === 4401) { location.assign("/desk/login"); return; }
        show(false);
        later();
      });
    }
    function later() {
      const delay = Math.min(30000, 1000 * 2 ** state.retry);
      state.retry = Math.min(state.retry + 1, 10);
      if (state.retry >= 2) window.KefuDesk.api("/desk/api/me").catch(() => {});
      clearTimeout(state.timer);
      state.timer = setTimeout(connect, delay);
    }
    connect();
  }

  window.KefuTickets = Object.freeze({
    FINISHED, label, parse, time, countdown, sla, slaBadge, paintCountdowns, live,
  });
})();
