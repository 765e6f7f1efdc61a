// The quality page (/desk/quality): QA findings from /desk/api/quality/findings, filters in the URL.
// Agents appeal their own findings (once, with a reason); supervisors and admins decide pending
// appeals (uphold, or overturn: the finding no longer counts and the conversation is re-scored).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { api, h } = window.KefuDesk;
  const Q = window.KefuQa;
  const app = $("quality-app");
  const me = { username: app.dataset.username, lead: app.dataset.lead === "true" };
  const form = $("quality-filters");
  const state = { seq: 0 };

  const fields = () => [...form.elements].filter((el) => el.name);
  function fromUrl() {
    const query = new URLSearchParams(location.search);
    for (const el of fields()) el.value = query.get(el.name) || "";
  }
  function query() {
    const q = new URLSearchParams();
    for (const el of fields()) if (el.value.trim()) q.set(el.name, el.value.trim());
    return q;
  }
  async function load() {
    const seq = ++state.seq;
    const q = query();
    const data = await Q.attempt(api(`/desk/api/quality/findings${q.toString() ? "?" + q : ""}`));
    if (seq !== state.seq || !data) return;
    const rows = data.findings || [];
    $("findings").replaceChildren(...rows.map((f) => Q.findingCard(f, me, load)));
    $("findings-count").textContent = Q.num(rows.length);
    $("findings-empty").hidden = rows.length > 0;
    document.body.dataset.loaded = "true";
  }
  function changed() {
    const q = query();
    history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
    load();
  }
  form.addEventListener("change", changed);
  form.addEventListener("submit", (event) => { event.preventDefault(); changed(); });
  $("filter-reset").addEventListener("click", () => { history.replaceState(null, "", location.pathname); fromUrl(); load(); });
  window.addEventListener("popstate", () => { fromUrl(); load(); });
  fromUrl();
  load();
})();
