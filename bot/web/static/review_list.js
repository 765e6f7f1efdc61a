// The weekly review list (/desk/review-list): /desk/api/review-list?week=…, the week in the URL.
// Supervisors and admins change owner, due date, status and note and add items; an item's owner
// changes its status and note (the server decides; a refusal shows its message).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h, notify } = window.KefuDesk;
  const Q = window.KefuQa;
  const app = $("review-list-app");
  const me = { username: app.dataset.username, lead: app.dataset.lead === "true" };
  const state = { week: "", owners: [], seq: 0 };

  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  function shiftWeek(days) {
    const base = state.week ? new Date(`${state.week}T12:00:00`) : new Date();
    base.setDate(base.getDate() + days);
    setWeek(iso(base));
  }
  function setWeek(week) {
    const q = new URLSearchParams(location.search);
    if (week) q.set("week", week); else q.delete("week");
    history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
    load();
  }

  function ownerSelect(current) {
    const select = h("select", { name: "owner", className: "owner-select", "aria-label": "负责人 Owner" },
      h("option", { value: "", text: "—" }),
      state.owners.map((o) => h("option", { value: o.username, text: `${o.display_name} (${Q.label.role(o.role)})` })));
    if (current && ![...select.options].some((o) => o.value === current)) select.appendChild(h("option", { value: current, text: current }));
    select.value = current || "";
    return select;
  }
  function statusSelect(current) {
    const select = h("select", { name: "status", "aria-label": "状态 Status" },
      ["open", "doing", "done", "dropped"].map((s) => h("option", { value: s, text: Q.label.item(s) })));
    select.value = current || "open";
    return select;
  }
  function itemCard(item) {
    const mine = item.owner === me.username;
    const all = item.editable === "all";
    const editable = all || item.editable === "status";
    const overdue = !!item.overdue;
    const examples = (item.examples || []).map((e) => h("a", { href: e.link || `/desk/conversations/${e.pk}`, text: `#${e.pk}` }));
    const form = editable && h("form", { className: "item-form", dataset: { itemId: item.id } },
      all && h("label", {}, "负责人 Owner", ownerSelect(item.owner)),
      all && h("label", {}, "期限 Due", h("input", { type: "date", name: "due_on", value: item.due_on || "", required: true })),
      h("label", {}, "状态 Status", statusSelect(item.status)),
      h("label", { className: "grow" }, "备注 Note", h("input", { type: "text", name: "note", maxlength: "2000", value: item.note || "" })),
      h("button", { type: "submit", className: "btn btn-small btn-primary", text: "保存 Save" }));
    return h("li", { className: `item status-${item.status}${overdue ? " is-overdue" : ""}${mine ? " is-mine" : ""}`, dataset: { itemId: item.id }, "data-testid": "review-item" },
      h("p", { className: "item-head" },
        h("strong", { text: item.title }),
        h("span", { className: `badge status-${item.status}`, text: Q.label.item(item.status) }),
        item.occurrences ? h("span", { className: "badge", text: `×${Q.num(item.occurrences)}` }) : null,
        overdue && h("span", { className: "badge qa-red", text: "已逾期 Overdue" })),
      item.detail && h("p", { className: "pre", text: item.detail }),
      h("p", { className: "muted row" },
        h("span", { text: `负责人 Owner: ${item.owner_name || item.owner || "—"}` }),
        h("span", { text: `期限 Due: ${item.due_on || "—"}` }),
        h("span", { text: `周 Week: ${item.week_start || "—"}` }),
        item.updated_by && h("span", { text: `更新 Updated by ${item.updated_by} ${Q.time(item.updated_at)}` }),
        examples.length ? h("span", {}, "例子 Examples: ", ...examples.flatMap((a) => [a, " "])) : null),
      !editable && item.note && h("p", { className: "pre", text: `备注 Note: ${item.note}` }),
      form);
  }
  async function load() {
    const seq = ++state.seq;
    const query = new URLSearchParams(location.search);
    const week = query.get("week") || "";
    const status = $("status-filter").value;
    const q = new URLSearchParams();
    if (week) q.set("week", week);
    if (status) q.set("status", status);
    const data = await Q.attempt(api(`/desk/api/review-list${q.toString() ? "?" + q : ""}`));
    if (seq !== state.seq || !data) return;
    state.week = data.week || "";
    state.owners = data.owners || [];
    $("week-input").value = state.week;
    const report = $("weekly-report");
    if (report) { report.hidden = !state.week; report.href = `/desk/reports/weekly/${state.week}`; }
    const items = data.items || [];
    $("items").replaceChildren(...items.map(itemCard));
    $("items-count").textContent = Q.num(items.length);
    $("items-empty").hidden = items.length > 0;
    const add = $("add-item");
    if (add) {
      const select = add.querySelector("select[name=owner]");
      const current = select.value;
      select.replaceChildren(...ownerSelect(current).children);
      select.value = current;
    }
    document.body.dataset.loaded = "true";
  }
  async function save(form) {
    const body = {};
    for (const el of form.elements) {
      if (el.name) body[el.name] = el.value;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const done = await Q.attempt(Q.send("PATCH", `/desk/api/review-list/${form.dataset.itemId}`, body));
    button.disabled = false;
    if (done) { notify("已保存 Saved.", "info"); load(); }
  }
  async function add(form) {
    const body = Object.fromEntries([...form.elements].filter((el) => el.name).map((el) => [el.name, el.value.trim()]));
    const done = await Q.attempt(Q.send("POST", "/desk/api/review-list", body));
    if (done) { notify("已添加 Added.", "info"); form.reset(); load(); }
  }

  $("items").addEventListener("submit", (event) => {
    const form = event.target.closest(".item-form");
    if (form) { event.preventDefault(); save(form); }
  });
  const adder = $("add-item");
  if (adder) adder.addEventListener("submit", (event) => { event.preventDefault(); add(adder); });
  $("week-input").addEventListener("change", (event) => setWeek(event.target.value));
  $("week-form").addEventListener("submit", (event) => event.preventDefault());
  $("week-previous").addEventListener("click", () => shiftWeek(-7));
  $("week-next").addEventListener("click", () => shiftWeek(7));
  $("week-all").addEventListener("click", () => setWeek(""));
  $("status-filter").addEventListener("change", load);
  window.addEventListener("popstate", load);
  load();
})();
