// What the supervision pages share (after desk_common.js, before dashboard.js, conversations.js,
// conversation.js, quality.js and review_list.js):
//   KefuQa.label.{outcome,channel,language,tier,grade,severity,appeal,item,role,target,subject}(key)
//   KefuQa.pct(0.42) "42%"  ·  KefuQa.secs(95) "1.6 分 min"  ·  KefuQa.hours(2.5)  ·  KefuQa.num(1234)
//   KefuQa.time(iso) / KefuQa.day(iso)      local date-time / date text of an ISO timestamp
//   KefuQa.send(method, path, body)         PATCH/POST JSON with the CSRF token (KefuDesk errors)
//   KefuQa.findingCard(finding, me, onDone) a finding with its appeal and, for leads, decide forms
// Text only, never HTML: every node comes from KefuDesk.h.
(function () {
  "use strict";

  const { h, notify, ApiError, detailOf } = window.KefuDesk;
  const CSRF = (document.querySelector("meta[name=csrf-token]") || {}).content || "";

  const OUTCOME = {
    self_service: "自助解决 Self-service", ticket: "已建工单 Ticket", handoff: "转人工 Handoff",
    unresolved: "未解决 Unresolved", abandoned: "无应答 Abandoned", open: "进行中 Open",
  };
  const CHANNEL = { socketio: "网页 Web", web: "网页 Web", wechat: "微信 WeChat", telegram: "Telegram", rest: "REST" };
  const LANGUAGE = { zh: "中文 Chinese", en: "英文 English" };
  const TIER = { urgent: "紧急 Urgent", normal: "普通 Normal", consultation: "咨询 Consultation" };
  const GRADE = { general: "一般投诉 General", major: "重大投诉 Major" };
  const SEVERITY = { minor: "轻微 Minor", major: "严重 Major", fatal: "致命 Fatal" };
  const APPEAL = { none: "未申诉 Not appealed", pending: "申诉中 Appealed", upheld: "维持 Upheld", overturned: "已撤销 Overturned" };
  const ITEM = { open: "待处理 Open", doing: "进行中 Doing", done: "已完成 Done", dropped: "已放弃 Dropped" };
  const ROLE = { agent: "坐席 Agent", supervisor: "主管 Supervisor", admin: "管理员 Admin", editor: "编辑 Editor" };
  const TARGET = {
    need_accuracy: "需求记录准确率 Need accuracy", record_completeness: "记录完整率 Record completeness",
    self_service_rate: "自助解决率 Self-service rate", answer_accuracy: "答案准确率 Answer accuracy",
    sla_hit_rate: "SLA 达成率 SLA hit rate", csat_response_rate: "满意度回复率 CSAT response rate",
    satisfaction: "满意度 Satisfaction", qa_pass_rate: "质检合格率 QA pass rate", complaint_rate: "投诉率 Complaint rate",
  };
  const of = (map) => (key) => (key === null || key === undefined || key === "" ? "—" : map[key] || String(key));
  const subject = (key) => (!key ? "—" : key === "bot" ? "机器人 Bot" : key.startsWith("agent:") ? key.slice(6) : key);
  const label = Object.freeze({
    outcome: of(OUTCOME), channel: of(CHANNEL), language: of(LANGUAGE), tier: of(TIER), grade: of(GRADE),
    severity: of(SEVERITY), appeal: of(APPEAL), item: of(ITEM), role: of(ROLE), target: of(TARGET), subject,
  });

  const missing = (v) => v === null || v === undefined || Number.isNaN(v);
  const num = (v) => (missing(v) ? "—" : Number(v).toLocaleString());
  const pct = (v) => (missing(v) ? "—" : `${(Number(v) * 100).toFixed(Number(v) >= 0.995 || Number(v) === 0 ? 0 : 1)}%`);
  function secs(v) {
    if (missing(v)) return "—";
    const s = Number(v);
    if (s < 90) return `${Math.round(s)} 秒 s`;
    if (s < 5400) return `${(s / 60).toFixed(1)} 分 min`;
    return `${(s / 3600).toFixed(1)} 小时 h`;
  }
  const hours = (v) => (missing(v) ? "—" : Number(v) < 48 ? `${Number(v).toFixed(1)} 小时 h` : `${(Number(v) / 24).toFixed(1)} 天 d`);
  function parse(iso) {
    if (!iso) return null;
    const text = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso) ? iso + "Z" : iso;
    const d = new Date(text);
    return isNaN(d.getTime()) ? null : d;
  }
  const time = (iso) => { const d = parse(iso); return d ? d.toLocaleString() : "—"; };
  const day = (iso) => { const d = parse(iso); return d ? d.toLocaleDateString() : "—"; };

  async function send(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method, credentials: "same-origin", body: JSON.stringify(body || {}),
        headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      });
    } catch (err) {
      throw new ApiError(0, "网络错误，请重试 Network error, please try again.");
    }
    if (response.status === 401) { window.location.assign("/desk/login"); throw new ApiError(401, "请重新登录 Please sign in again."); }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, detailOf(data) || `请求失败 Request failed (${response.status})`);
    return data;
  }
  async function attempt(call) {
    try { return await call; } catch (err) { if (err.status !== 401) notify(err.message || String(err)); return null; }
  }

  // ---------------------------------------------------------------- a finding, with its appeal
  function appealForm(finding, onDone) {
    const text = h("textarea", { className: "qa-appeal-text", rows: "2", maxlength: "1000", required: true,
      placeholder: "申诉理由 Why this finding is wrong", "aria-label": "申诉理由 Reason" });
    const form = h("form", { className: "qa-form" }, text,
      h("button", { type: "submit", className: "btn btn-small btn-primary", text: "提交申诉 Send the appeal" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!text.value.trim()) { notify("请填写申诉理由 Say why."); return; }
      form.querySelector("button").disabled = true;
      const done = await attempt(send("POST", `/desk/api/quality/findings/${finding.id}/appeal`, { text: text.value.trim() }));
      form.querySelector("button").disabled = false;
      if (done) { notify("已提交申诉 Appeal sent.", "info"); onDone(done); }
    });
    const box = h("details", { className: "qa-appeal-box", "data-testid": "appeal-form" },
      h("summary", { className: "btn btn-small", text: "申诉 Appeal…" }), form);
    box.addEventListener("toggle", () => { if (box.open) text.focus(); });
    return box;
  }
  function decideForm(finding, onDone) {
    const note = h("input", { type: "text", className: "qa-decision-note", maxlength: "1000",
      placeholder: "说明 Note", "aria-label": "说明 Note" });
    const button = (decision, text, cls) => h("button", { type: "button", className: `btn btn-small ${cls}`, dataset: { decision }, text });
    const form = h("div", { className: "qa-form row", "data-testid": "decide-form" }, note,
      button("upheld", "维持 Uphold", ""), button("overturned", "撤销扣分 Overturn", "btn-ok"));
    form.addEventListener("click", async (event) => {
      const target = event.target.closest("button[data-decision]");
      if (!target) return;
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      const done = await attempt(send("POST", `/desk/api/quality/findings/${finding.id}/decision`,
        { decision: target.dataset.decision, note: note.value.trim() }));
      for (const b of form.querySelectorAll("button")) b.disabled = false;
      if (done) { notify(`${label.appeal(done.appeal_status)} · ${done.title || ""}`, "info"); onDone(done); }
    });
    return form;
  }
  // me: {username, lead}; showConversation: link to the conversation (lists, not its own page).
  function findingCard(finding, me, onDone, showConversation = true) {
    const mine = finding.agent && finding.agent === me.username;
    const status = finding.appeal_status || "none";
    return h("li", {
      className: `qa-finding sev-${finding.severity || "minor"}${finding.red_card ? " is-red" : ""} appeal-${status}`,
      dataset: { findingId: finding.id, messageId: finding.message_id ?? "" }, "data-testid": "finding",
    },
      h("p", { className: "qa-finding-head" },
        finding.red_card && h("span", { className: "badge qa-red", text: "红牌 Red card" }),
        h("strong", { text: finding.title || finding.rule_id }),
        h("span", { className: "qa-points", text: `−${finding.points}` }),
        h("span", { className: `badge sev sev-${finding.severity}`, text: label.severity(finding.severity) }),
        h("span", { className: `badge appeal appeal-${status}`, text: label.appeal(status) })),
      h("p", { className: "qa-finding-meta muted" },
        h("span", { text: label.subject(finding.subject_key) }),
        h("span", { text: finding.rule_id }),
        h("time", { text: time(finding.created_at) }),
        showConversation && finding.conversation_link && h("a", { href: finding.conversation_link, text: `会话 Conversation #${finding.conversation_pk}` })),
      finding.detail && h("p", { className: "qa-detail", text: finding.detail }),
      finding.message_text && h("blockquote", { className: "qa-evidence", text: finding.message_text }),
      finding.appeal_text && h("p", { className: "qa-appeal" }, h("span", { className: "muted", text: `申诉 Appeal (${finding.appealed_by || "—"}): ` }), finding.appeal_text),
      finding.decided_by && h("p", { className: "qa-decision" }, h("span", { className: "muted", text: `决定 Decision (${finding.decided_by}): ` }), finding.decision_note || label.appeal(status)),
      status === "none" && mine && appealForm(finding, onDone),
      status === "pending" && me.lead && decideForm(finding, onDone));
  }

  window.KefuQa = Object.freeze({ label, num, pct, secs, hours, parse, time, day, send, attempt, findingCard });
})();
