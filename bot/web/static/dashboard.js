// The supervisors' dashboard (/desk/dashboard): vanilla JavaScript, no framework; the CSP forbids inline code.
//   live    – tiles of the desk right now (/desk/api/dashboard/live), refreshed every 10 s
//   day     – the day's figures with the day before, targets, tables (/desk/api/dashboard/day)
//   charts  – <img> SVGs from the server; today's refreshed every minute
// Every figure is a link to its conversations (drill-down) or to the tickets it counts.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h } = window.KefuDesk;
  const Q = window.KefuQa;
  const app = $("dashboard");
  const RED_CARDS_SHOWN = 8;
  const state = { day: app.dataset.day, isToday: app.dataset.isToday === "true", links: {}, drilldown: {}, base: "/desk/conversations" };

  // ---------------------------------------------------------------- tiles
  // tile({label, value, sub, href, tone, testid}); tone: "" | "good" | "warn" | "bad"
  function tile(t) {
    const body = [
      h("span", { className: "tile-label", text: t.label }),
      h("span", { className: "tile-value", text: t.value }),
      t.sub && h("span", { className: "tile-sub", text: t.sub }),
    ];
    const props = { className: `tile${t.tone ? " tone-" + t.tone : ""}`, "data-testid": t.testid || "tile", dataset: { figure: t.key || "" } };
    return t.href ? h("a", { ...props, href: t.href }, body) : h("div", props, body);
  }
  const LIVE = [
    ["open_tickets", "未完成工单 Open tickets", "/desk/tickets", null],
    ["unattended", "排队待接 Waiting for an agent", "/desk/tickets?status=pending_agent", "warn"],
    ["at_risk", "即将超时 At risk", "/desk/tickets?at_risk=true", "warn"],
    ["overdue", "已超时 Overdue", "/desk/tickets?overdue=true", "bad"],
    ["agents_online", "在线坐席 Agents online", null, null],
    ["pending_appeals", "待处理申诉 Pending appeals", "/desk/quality?status=pending", "warn"],
    ["open_alerts", "未处理提醒 Open alerts", "/desk/tickets", "warn"],
  ];
  async function loadLive() {
    let data;
    try { data = await api("/desk/api/dashboard/live"); } catch (err) { $("live-at").textContent = "更新失败 Update failed"; return; }
    $("live-tiles").replaceChildren(...LIVE.map(([key, text, href, tone]) => tile({
      key, label: text, value: Q.num(data[key]), href, testid: "live-tile", tone: tone && data[key] > 0 ? tone : "",
    })));
    const t = data.today || {};
    $("live-today").textContent = `今天 Today: ${Q.num(t.conversations)} 会话 conversations · 自助 self-service ${Q.pct(t.self_service_rate)}`
      + ` · 转人工 handoff ${Q.pct(t.handoff_rate)} · 首响 first response ${Q.secs(t.first_response_p50_seconds)}`
      + ` · SLA ${Q.pct(t.sla_hit_rate)} · 红牌 red cards ${Q.num(t.red_cards)}`;
    $("live-at").textContent = `更新于 Updated ${new Date().toLocaleTimeString()}`;
  }

  // ---------------------------------------------------------------- the day
  const link = (figure) => state.links[figure] || state.base;
  // The day's conversations under `params` (added to the day's list).
  const drill = (params) => {
    const url = new URL(state.base, location.origin);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
    return url.pathname + url.search;
  };
  // The conversations behind item `key` of `figure` (the server's DRILLDOWN: "{key}" is the item).
  function drillFor(figure, key) {
    const spec = state.drilldown[figure];
    if (!spec) return state.base;
    const params = {};
    for (const [k, v] of Object.entries(spec)) {
      if (v !== "{key}") params[k] = v;
      else if (key !== undefined && key !== null) params[k] = key;
    }
    return drill(params);
  }
  // The change against the day before: "▲ 3.2 pts" etc.; better: true when up is good.
  function delta(now, before, kind, upIsGood) {
    if (now === null || now === undefined || before === null || before === undefined) return { text: "", tone: "" };
    const d = Number(now) - Number(before);
    if (Math.abs(d) < 1e-9) return { text: "与前一天持平 same as the day before", tone: "" };
    const arrow = d > 0 ? "▲" : "▼";
    const size = kind === "pct" ? `${Math.abs(d * 100).toFixed(1)} pt` : kind === "secs" ? Q.secs(Math.abs(d)) : Q.num(Math.round(Math.abs(d) * 100) / 100);
    const good = upIsGood === null ? "" : (d > 0) === upIsGood ? "good" : "bad";
    return { text: `${arrow} ${size} vs 前一天 the day before`, tone: good };
  }
  function target(m, name) { return (m.targets || {})[name] || null; }
  function dayTiles(m, before) {
    const T = (key, text, value, opts = {}) => {
      const goal = opts.target ? target(m, opts.target) : null;
      // No deltas against an empty day, nor counts of a day still going against a whole one.
      const compared = opts.kind && before.conversations > 0 && !(opts.count && state.isToday);
      const change = compared ? delta(m[key], before[key], opts.kind, opts.upIsGood ?? null) : { text: "" };
      const subs = [opts.sub, goal && `目标 target ${opts.kind === "pct" ? Q.pct(goal.target) : goal.target}`, change.text].filter(Boolean);
      const tone = goal && goal.met !== null ? (goal.met ? "good" : "bad") : opts.tone || "";
      return tile({ key, label: text, value, sub: subs.join(" · "), href: link(opts.figure || key), tone, testid: "day-tile" });
    };
    return [
      T("conversations", "会话 Conversations", Q.num(m.conversations), { kind: "num", count: true, sub: `${Q.num((m.outcomes || {}).handoff)} 转人工 handed over` }),
      T("self_service_rate", "自助解决率 Self-service", Q.pct(m.self_service_rate), { kind: "pct", upIsGood: true, target: "self_service_rate" }),
      T("handoff_rate", "转人工率 Handoff rate", Q.pct(m.handoff_rate), { kind: "pct", upIsGood: false }),
      T("ticket_rate", "工单率 Ticket rate", Q.pct(m.ticket_rate), {}),
      T("first_response_p50_seconds", "首次响应 p50 First response", Q.secs(m.first_response_p50_seconds), { kind: "secs", upIsGood: false, sub: `p90 ${Q.secs(m.first_response_p90_seconds)}` }),
      T("resolution_p50_hours", "解决时长 p50 Resolution", Q.hours(m.resolution_p50_hours), { sub: `p90 ${Q.hours(m.resolution_p90_hours)}` }),
      T("sla_hit_rate", "SLA 达成率 SLA hit rate", Q.pct(m.sla_hit_rate), { kind: "pct", upIsGood: true, target: "sla_hit_rate" }),
      T("csat_average", "满意度 CSAT", m.csat_average === null || m.csat_average === undefined ? "—" : Number(m.csat_average).toFixed(2), { kind: "num", upIsGood: true, target: "satisfaction", sub: `回复率 responses ${Q.pct(m.csat_response_rate)}` }),
      T("red_card_count", "红牌 Red cards", Q.num(m.red_card_count), { kind: "num", count: true, upIsGood: false, tone: m.red_card_count > 0 ? "bad" : "good" }),
      T("qa_bot_average", "机器人质检分 Bot QA score", m.qa_bot_average === null || m.qa_bot_average === undefined ? "—" : Number(m.qa_bot_average).toFixed(1), { kind: "num", upIsGood: true }),
    ];
  }

  // ---------------------------------------------------------------- tables
  function table(testid, head, rows, empty) {
    if (!rows.length) return h("p", { className: "empty", text: empty || "没有数据 No data" });
    return h("div", { className: "table-wrap" }, h("table", { className: "sv-table", "data-testid": testid },
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
  }
  const a = (href, text) => h("a", { href, text });
  // A bar of `share` (0..1); widths are set through the CSSOM (the CSP refuses style attributes).
  function bar(share, cls) {
    const fill = h("span", { className: `bar-fill ${cls || ""}` });
    fill.style.width = `${Math.round(100 * Math.max(0, Math.min(1, share || 0)))}%`;
    return h("span", { className: "bar" }, fill);
  }
  function shareBars(counts, total, figure, labelOf) {
    const rows = Object.entries(counts || {}).sort((x, y) => y[1] - x[1]);
    if (!rows.length) return h("p", { className: "empty", text: "没有数据 No data" });
    return h("ul", { className: "bars", "data-testid": `bars-${figure}` }, rows.map(([name, n]) => h("li", {},
      a(drillFor(figure, name), labelOf(name)),
      bar(total ? n / total : 0),
      h("span", { className: "bar-count", text: `${Q.num(n)} · ${total ? Q.pct(n / total) : "—"}` }))));
  }
  function renderTables(m) {
    const total = m.conversations || 0;
    $("outcomes").replaceChildren(shareBars(m.outcomes, total, "outcomes", Q.label.outcome));
    $("channels").replaceChildren(shareBars(m.conversations_by_channel, total, "conversations_by_channel", Q.label.channel));
    $("languages").replaceChildren(shareBars(m.conversations_by_language, total, "conversations_by_language", Q.label.language));
    const targets = Object.entries(m.targets || {});
    $("targets").replaceChildren(table("targets-table", ["指标 Target", "目标 Goal", "实际 Actual", ""],
      targets.map(([name, t]) => {
        const shown = name === "satisfaction" ? (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(2)) : Q.pct;
        const figure = `targets.${name}`;
        return [state.links[figure] ? a(link(figure), Q.label.target(name)) : Q.label.target(name), shown(t.target), shown(t.actual),
          h("span", { className: `met met-${t.met === null ? "none" : t.met}`, text: t.met === null ? "无数据 no data" : t.met ? "✓ 达标 met" : "✗ 未达标 missed" })];
      })));
    const sla = (by, figure, labelOf, all) => Object.entries(by || {}).map(([name, s]) => [
      a(all(name), labelOf(name)), Q.num(s.tickets), Q.num(s.hit),
      s.missed ? a(drillFor(figure, name), Q.num(s.missed)) : "0", Q.num(s.pending), Q.pct(s.rate)]);
    const head = (first) => [first, "工单 Tickets", "达成 Hit", "超时 Missed", "未到期 Pending", "达成率 Rate"];
    $("sla").replaceChildren(
      table("sla-tier-table", head("级别 Tier"), sla(m.sla_by_tier, "sla_by_tier", Q.label.tier, (tier) => drill({ has_ticket: true, tier }))),
      table("sla-grade-table", head("投诉 Complaint"), sla(m.sla_by_complaint_grade, "sla_by_complaint_grade", Q.label.grade, (grade) => drill({ complaint_grade: grade }))));
    $("response").replaceChildren(table("response-table", ["级别 Tier", "次数 Count", "p50", "p90"],
      Object.entries(m.first_response_by_tier || {}).map(([tier, r]) => [a(drillFor("first_response_by_tier", tier), Q.label.tier(tier)), Q.num(r.count), Q.secs(r.p50_seconds), Q.secs(r.p90_seconds)])));
    $("qa-agents").replaceChildren(table("qa-agents-table", ["坐席 Agent", "会话 Conversations", "平均分 Average", "扣分项 Findings", "红牌 Red cards"],
      (m.qa_agents || []).map((r) => [a(drillFor("qa_agents", r.agent), r.name || r.agent), Q.num(r.conversations),
        r.average === null || r.average === undefined ? "—" : Number(r.average).toFixed(1), Q.num(r.findings),
        r.red_cards ? a(drill({ agent: r.agent, red_card: "true" }), Q.num(r.red_cards)) : "0"]), "今天没有坐席会话 No agent conversations"));
    const cards = m.red_cards || [];
    $("red-cards").replaceChildren(...cards.length
      ? [h("ul", { className: "red-cards", "data-testid": "red-cards" }, cards.slice(0, RED_CARDS_SHOWN).map((r) => h("li", {},
        a(r.link || `/desk/conversations/${r.conversation_pk}`, `#${r.conversation_pk}`),
        h("strong", { text: r.title || r.rule_id }), h("span", { className: "muted", text: Q.label.subject(r.subject) }),
        r.detail && h("span", { className: "muted", text: r.detail })))),
        cards.length > RED_CARDS_SHOWN && h("p", {}, a(link("red_card_count"), `查看全部 ${cards.length} 张红牌 See all ${cards.length} red cards →`))]
      : [h("p", { className: "empty good", text: "没有红牌 No red cards" })]);
    const hours = (m.hourly || []).filter((row) => row.conversations > 0);
    $("hours").replaceChildren(...hours.map((row) => a(drillFor("hourly", row.hour), `${String(row.hour).padStart(2, "0")}时 ${Q.num(row.conversations)}`)));
    const dist = m.csat_distribution || {};
    const rated = Object.values(dist).reduce((s, n) => s + n, 0);
    $("csat").replaceChildren(h("ul", { className: "bars", "data-testid": "bars-rating" }, ["5", "4", "3", "2", "1"].map((score) => h("li", {},
      a(drillFor("csat_distribution", score), `${"★".repeat(Number(score))}`),
      bar(rated ? (dist[score] || 0) / rated : 0, `score-${score}`),
      h("span", { className: "bar-count", text: Q.num(dist[score] || 0) })))));
    $("unanswered").replaceChildren(table("unanswered-table", ["问题 Question", "次数 Times"],
      (m.top_unanswered || []).map((q) => [a(drillFor("top_unanswered", q.question), q.question), Q.num(q.count)]), "没有未解答的问题 No unanswered questions"));
  }

  async function loadDay() {
    let data;
    try { data = await api(`/desk/api/dashboard/day?date=${encodeURIComponent(state.day)}`); } catch (err) {
      $("day-status").textContent = `无法加载 Could not load: ${err.message}`;
      return;
    }
    state.links = data.links || {};
    state.drilldown = data.drilldown || {};
    state.base = data.conversations || state.base;
    $("day-tiles").replaceChildren(...dayTiles(data.metrics || {}, data.previous || {}));
    renderTables(data.metrics || {});
    for (const [name, c] of Object.entries(data.charts || {})) {
      const anchor = document.querySelector(`[data-chart="${name}"] a`);
      if (anchor) anchor.href = c.link;
    }
    $("csv-link").href = data.csv;
    $("day-status").textContent = data.today ? `截至 As of ${new Date().toLocaleTimeString()}` : "";
    app.dataset.loaded = "true";
  }
  function refreshCharts() {
    for (const img of document.querySelectorAll("img[data-src]")) img.src = `${img.dataset.src}&t=${Date.now()}`;
  }

  loadLive();
  loadDay();
  setInterval(loadLive, 10000);
  if (state.isToday) setInterval(() => { loadDay(); refreshCharts(); }, 60000);
})();
