// What the desk pages share, loaded before desk.js and review.js (no framework, no build).
//   KefuDesk.h(tag, props, ...children)  builds DOM nodes from text only (never HTML)
//   KefuDesk.notify(text, kind)          a toast in the page's #notice ("error" stays 9 s, others 5 s)
//   KefuDesk.api(path)        GET `path`, resolves to the JSON answer
//   KefuDesk.api(path, body)  POST `body` as JSON with the session's X-CSRF-Token
// A 401 sends the user to /desk/login; any other failure rejects with a KefuDesk.ApiError whose
// message is the server's detail (FastAPI's validation errors name the field).
(function () {
  "use strict";

  const CSRF = (document.querySelector("meta[name=csrf-token]") || {}).content || "";

  // h("li", {className, text, value, dataset, ...attributes}, ...children): strings become text
  // nodes, arrays of children are flattened, null/undefined/false/"" are skipped.
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "value") node.value = String(value);
      else if (key === "dataset") for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    addChildren(node, children);
    return node;
  }
  function notify(text, kind = "error") {
    const box = document.getElementById("notice");
    const close = h("button", { type: "button", className: "toast-close", "aria-label": "关闭 Close", text: "×" });
    const toast = h("div", { className: `toast toast-${kind}` }, h("span", { text }), close);
    close.addEventListener("click", () => toast.remove());
    box.appendChild(toast);
    while (box.children.length > 3) box.firstElementChild.remove();
    setTimeout(() => toast.remove(), kind === "error" ? 9000 : 5000);
  }
  function addChildren(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false || child === "") continue;
      if (Array.isArray(child)) addChildren(node, child);
      else node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function detailOf(data) {
    const detail = data && data.detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => {
        if (!d || !d.msg) return text(d);
        const where = Array.isArray(d.loc) ? d.loc.filter((part) => part !== "body").join(".") : "";
        return where ? `${where}: ${d.msg}` : d.msg;
      }).join("; ");
    }
    return text(detail);
  }

  async function api(path, body) {
    const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = CSRF;
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new ApiError(0, "网络错误，请重试 Network error, please try again.");
    }
    if (response.status === 401) {
      window.location.assign("/desk/login");
      throw new ApiError(401, "请重新登录 Please sign in again.");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, detailOf(data) || `请求失败 Request failed (${response.status})`);
    return data;
  }

  window.KefuDesk = Object.freeze({ api, ApiError, detailOf, h, notify });
})();
