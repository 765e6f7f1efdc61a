// One conversation (/desk/conversations/<pk>): /desk/api/conversations/<pk> → fields, transcript,
// QA scores and findings. A message that is a finding's evidence is outlined and linked to it; the
// agent a finding is about may appeal it, supervisors and admins decide pending appeals.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h } = window.KefuDesk;
  const Q = window.KefuQa;
  const app = $("conversation-app");
  if (!app) return;
  const me = { username: app.dataset.username, lead: app.dataset.lead === "true" };
  const ROLE = { customer: "客户 Customer", bot: "机器人 Bot", agent: "坐席 Agent", system: "系统 System" };

  function meta(c) {
    const item = (label, value) => value !== null && value !== undefined && value !== "" && h("span", {}, `${label} `, h("strong", { text: String(value) }));
    const ticket = c.ticket && h("span", {}, "工单 Ticket ", h("a", { href: c.ticket.link, text: c.ticket.number }),
      ` ${Q.label.tier(c.ticket.urgency)}`, c.ticket.complaint_grade ? ` · ${Q.label.grade(c.ticket.complaint_grade)}` : "");
    return [
      item("客户 Customer", c.conversation_id),
      item("渠道 Channel", Q.label.channel(c.channel)),
      item("语言 Language", Q.label.language(c.language)),
      item("开始 Started", Q.time(c.started_at)),
      item("结束 Ended", c.ended_at ? Q.time(c.ended_at) : "进行中 open"),
      item("坐席 Agents", (c.agents || []).join(", ") || null),
      c.transfers ? item("转接 Transfers", c.transfers) : null,
      item("首响 First response", c.first_response_seconds === null || c.first_response_seconds === undefined ? null : Q.secs(c.first_response_seconds)),
      item("评分 Rating", c.rating ? "★".repeat(c.rating) : null),
      ticket,
      c.handoff && item("转人工 Handoff", `#${c.handoff.id} ${c.handoff.agent || ""}`.trim()),
      c.source === "generated" ? h("span", { className: "badge", text: "生成 Generated" }) : null,
    ];
  }
  function scoreChip(s) {
    const value = Number(s.score);
    return h("div", { className: `score-chip${s.red_card ? " is-red" : ""}`, "data-testid": "score", dataset: { subject: s.subject_key } },
      h("span", { text: Q.label.subject(s.subject_key) }),
      h("strong", { className: `sv-score ${value < 60 ? "low" : value < 90 ? "mid" : "high"}`, text: value.toFixed(0) }),
      h("span", { className: "muted", text: `${s.findings} 项 findings · −${s.points}${s.red_card ? " · 红牌 red card" : ""}` }));
  }
  function message(m) {
    const flagged = (m.findings || []).length > 0;
    return h("li", { className: `msg msg-${m.role}${flagged ? " has-finding" : ""}`, id: `m${m.id}`, dataset: { role: m.role } },
      h("span", { className: "msg-meta" },
        h("span", { text: m.role === "agent" && m.author ? `${ROLE.agent} · ${m.author}` : ROLE[m.role] || m.role }),
        h("time", { text: Q.time(m.at) }),
        m.intent && h("span", { text: `${m.intent}${m.confidence ? ` ${(m.confidence * 100).toFixed(0)}%` : ""}` }),
        m.action && h("span", { text: m.action }),
        flagged && h("a", { className: "msg-flag", href: `#f${m.findings[0]}`, text: `⚑ ${m.findings.length} 扣分 finding${m.findings.length > 1 ? "s" : ""}` })),
      h("p", { text: m.text }));
  }
  async function load() {
    const c = await Q.attempt(api(`/desk/api/conversations/${encodeURIComponent(app.dataset.pk)}`));
    if (!c) return;
    $("conv-outcome").textContent = Q.label.outcome(c.outcome || "open");
    $("conv-outcome").className = `badge outcome-${c.outcome || "open"}`;
    $("conv-red").hidden = !c.red_cards;
    $("conv-meta").replaceChildren(...meta(c).filter(Boolean));
    $("conv-scores").replaceChildren(...(c.scores || []).map(scoreChip),
      ...(c.scores || []).length ? [] : [h("span", { className: "muted", text: c.scored_at ? "无评分 No scores" : "尚未质检 Not scored yet" })]);
    const transcript = c.transcript || [];
    $("transcript").replaceChildren(...transcript.map(message));
    $("transcript-count").textContent = String(transcript.length);
    const findings = c.findings || [];
    $("findings").replaceChildren(...findings.map((f) => {
      const card = Q.findingCard(f, me, load, false);
      card.id = `f${f.id}`;
      if (f.message_id) card.appendChild(h("a", { className: "muted", href: `#m${f.message_id}`, text: "↳ 查看原话 See the message" }));
      return card;
    }));
    $("findings-count").textContent = String(findings.length);
    $("findings-empty").hidden = findings.length > 0;
    document.body.dataset.loaded = "true";
  }
  load();
})();
