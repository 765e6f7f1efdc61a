// Starts the rasa-webchat widget with the options the server put on #webchat.
(function () {
  "use strict";
  var mount = document.getElementById("webchat");
  if (!mount || !window.WebChat) {
    if (mount) { mount.textContent = "在线客服暂时无法加载，请稍后再试。The chat could not be loaded."; }
    return;
  }
  var config = JSON.parse(mount.getAttribute("data-config"));
  window.WebChat.default(config, mount);
})();
