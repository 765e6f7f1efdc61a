// Kefu review queue (/desk/review): vanilla JavaScript; the page's CSP forbids inline code.
//
// On load it collects new items (POST /desk/api/review/collect), then lists the pending groups
// (GET /desk/api/review). Each group is a card with the questions, the agents' replies and four
// decisions: approve as a new knowledge entry (edited), merge into an existing entry, add as NLU
// examples of an intent, or reject. Every POST carries the session's X-CSRF-Token. Text from the
// server is only ever put in the page as text (textContent / value), never as HTML.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  const { h } = window.KefuDesk;

  const SOURCE = {
    unanswered: "未答上 Unanswered",
    suggested: "仅给出建议 Suggestions only",
    not_solved: "没解决 Did not solve it",
    agent_reply: "坐席回复 Agent reply",
    frequent_problem: "常见问题 Frequent problem",
  };
  const STATUS = { approved: "已批准 Approved", merged: "已合并 Merged", rejected: "已拒绝 Rejected" };

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  // ---------------------------------------------------------------- notice
  const { api, notify } = window.KefuDesk;

  // ---------------------------------------------------------------- state
  const state = { topics: [], intents: [], loading: false };

  async function load(collectFirst) {
    if (state.loading) return;
    state.loading = true;
    $("review-refresh").disabled = true;
    try {
      if (collectFirst) {
        const collected = await api("/desk/api/review/collect", {});
        if (collected.collected) notify(`新收集 ${collected.collected} 条 · ${collected.collected} new items collected`, "info");
      }
      const data = await api("/desk/api/review");
      state.topics = data.topics || [];
      state.intents = data.intents || [];
      render(data);
    } catch (err) {
      if (err.status !== 401) notify(err.message || String(err));
    } finally {
      state.loading = false;
      $("review-refresh").disabled = false;
    }
  }

  function render(data) {
    const groups = data.groups || [];
    $("groups").replaceChildren(...groups.map(card));
    $("review-empty").hidden = groups.length > 0;
    $("review-summary").textContent = `${groups.length} 组 groups · ${data.pending} 条待审核 pending items`;
  }

  // ---------------------------------------------------------------- one group
  function field(id, label, control, hint) {
    return h("div", { className: "rg-field" }, h("label", { for: id, text: label }), control,
      hint ? h("span", { className: "hint", text: hint }) : null);
  }

  function options(values, selected, placeholder) {
    const list = [h("option", { value: "", text: placeholder })];
    for (const value of values) {
      const option = h("option", { value, text: value });
      if (value === selected) option.selected = true;
      list.push(option);
    }
    return list;
  }

  const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

  function card(group) {
    const p = group.proposal;
    const id = (name) => `rg-${group.id}-${name}`;
    const sources = Object.entries(group.sources).filter(([, n]) => n > 0)
      .map(([source, n]) => h("span", { className: `badge rg-source rg-source-${source}`, text: `${SOURCE[source] || source} ×${n}` }));
    const replies = group.items.filter((item) => item.answer);

    const question = h("input", { id: id("question"), className: "rg-question", type: "text", maxlength: "300", value: p.question });
    const alternatives = h("textarea", { id: id("alt"), className: "rg-alt", rows: "3", value: p.alt_questions.join("\n") });
    const answer = h("textarea", { id: id("answer"), className: "rg-answer", rows: "5", maxlength: "4000", value: p.answer });
    const topic = h("select", { id: id("topic"), className: "rg-topic" }, options(state.topics, p.topic, "— 选择主题文件 Choose a topic file —"));
    const language = h("select", { id: id("language"), className: "rg-language" },
      ["zh", "en"].map((code) => h("option", { value: code, text: code, selected: code === p.language })));
    const approve = h("button", { type: "button", className: "btn btn-primary rg-approve", text: "批准为知识条目 Approve as entry" });

    const entry = h("input", { id: id("entry"), className: "rg-entry", type: "text", maxlength: "120", value: p.entry_id || "", placeholder: "returns-refund-time" });
    const merge = h("button", { type: "button", className: "btn rg-merge", text: "合并 Merge" });

    const intent = h("select", { id: id("intent"), className: "rg-intent" }, options(state.intents, "", "— 选择意图 Choose an intent —"));
    const texts = h("textarea", { id: id("texts"), className: "rg-texts", rows: "3", value: [p.question, ...p.alt_questions].join("\n") });
    const nlu = h("button", { type: "button", className: "btn rg-nlu", text: "添加为 NLU 示例 Add NLU examples" });

    const reason = h("input", { id: id("reason"), className: "rg-reason", type: "text", maxlength: "500", placeholder: "原因（可选）Reason (optional)" });
    const reject = h("button", { type: "button", className: "btn rg-reject", text: "拒绝 Reject" });
    const result = h("p", { className: "rg-result", role: "status", hidden: true });

    const node = h("article", { className: "review-group", dataset: { groupId: group.id } },
      h("header", { className: "rg-head" },
        h("span", { className: "badge rg-count", title: "出现次数 Times asked", text: `×${group.count}` }),
        h("span", { className: "rg-customers", text: `${group.customers} 位客户 customers` }),
        sources,
        h("time", { className: "hint", datetime: group.last_at, text: when(group.last_at) })),
      h("div", { className: "rg-body" },
        h("section", { className: "rg-material" },
          h("h3", { text: "客户问题 Questions" }),
          h("ul", { className: "rg-questions" },
            group.questions.map((q) => h("li", {}, h("span", { text: q.text }), q.count > 1 ? h("span", { className: "badge", text: `×${q.count}` }) : null))),
          replies.length ? h("h3", { text: "坐席回复 Agents' replies" }) : null,
          replies.length ? h("ul", { className: "rg-replies" }, replies.slice(-3).map((item) => h("li", { text: item.answer }))) : null,
          p.entry_id ? h("p", { className: "hint rg-hit", text: `知识库最接近 Closest entry: ${p.entry_id} · ${p.entry_question || ""}` }) : null),
        h("section", { className: "rg-decide" },
          h("fieldset", { className: "rg-new" },
            h("legend", { text: "新知识条目 New knowledge entry" }),
            field(id("question"), "标准问题 Question", question),
            field(id("alt"), "相似问法 Alternative questions (one a line)", alternatives),
            field(id("answer"), "答案 Answer", answer),
            h("div", { className: "rg-row" }, field(id("topic"), "主题文件 Topic file", topic), field(id("language"), "语言 Language", language)),
            approve),
          h("details", { className: "rg-more" },
            h("summary", { text: "合并或 NLU 示例 Merge or NLU examples" }),
            h("fieldset", {},
              h("legend", { text: "合并到已有条目 Merge into an existing entry" }),
              field(id("entry"), "条目 ID Entry id", entry, "问题会加为它的相似问法 The questions become its alternative questions"),
              merge),
            h("fieldset", {},
              h("legend", { text: "NLU 训练示例 NLU examples" }),
              field(id("intent"), "意图 Intent", intent),
              field(id("texts"), "示例 Examples (one a line)", texts),
              nlu)),
          h("div", { className: "rg-row rg-reject-row" }, reason, reject))),
      result);

    const buttons = [approve, merge, nlu, reject];
    async function decide(action, body) {
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const done = await api(`/desk/api/review/groups/${group.id}/${action}`, { item_ids: group.item_ids, ...body });
        const d = done.decision || {};
        const target = [d.file, d.entry_id, d.intent].filter(Boolean).join(" · ");
        result.textContent = `${STATUS[done.status] || done.status}${target ? " → " + target : ""}${done.next_step ? " — " + done.next_step : ""}`;
        result.hidden = false;
        node.classList.add("is-decided", `is-${done.status}`);
        node.querySelector(".rg-body").hidden = true;
        notify(result.textContent, "info");
        $("review-summary").textContent = "已处理一组，点“刷新”查看最新队列 · One group decided; Refresh for the latest queue";
      } catch (err) {
        if (err.status === 401) return;
        notify(err.message || String(err));
        buttons.forEach((b) => { b.disabled = false; });
        if (err.status === 409 || err.status === 404) load(false);
      }
    }

    approve.addEventListener("click", () => {
      if (!topic.value) { notify("请选择主题文件 Choose a topic file."); topic.focus(); return; }
      if (!answer.value.trim()) { notify("答案为空 The answer is empty."); answer.focus(); return; }
      decide("approve", {
        question: question.value, alt_questions: lines(alternatives.value), answer: answer.value,
        topic: topic.value, language: language.value,
      });
    });
    merge.addEventListener("click", () => {
      if (!entry.value.trim()) { notify("请填写条目 ID Enter an entry id."); entry.focus(); return; }
      decide("merge", { entry_id: entry.value.trim() });
    });
    nlu.addEventListener("click", () => {
      if (!intent.value) { notify("请选择意图 Choose an intent."); intent.focus(); return; }
      decide("examples", { intent: intent.value, texts: lines(texts.value) });
    });
    reject.addEventListener("click", () => decide("reject", { reason: reason.value }));
    return node;
  }

  // ---------------------------------------------------------------- boot
  $("review-refresh").addEventListener("click", () => load(true));
  load(true);
})();
