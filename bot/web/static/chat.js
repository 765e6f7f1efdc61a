// Starts the rasa-webchat widget with the options the server put on #webchat.
//
// Rasa's socket.io channel gives a socket a session only for a customer session token from
// POST /chat/session, and answers as the token's sender. The token is kept in sessionStorage
// "kefu_chat_token" and handed to the widget as its session id (the widget keeps its session
// in "chat_session"); a reload renews the token (same sender, same conversation) while it is
// valid, and starts a new conversation once it is not.
// The channel confirms a session with the sender; the widget takes that for a new session id
// (and greets a new customer), so the token is put back as its session id soon after.
// A shop page may put data-user-id and data-user-hash on #webchat for a logged-in customer.
(function () {
  "use strict";
  var WIDGET_KEY = "chat_session"; // rasa-webchat 1.0.1's own key
  var TOKEN_KEY = "kefu_chat_token";
  var mount = document.getElementById("webchat");
  if (!mount || !window.WebChat) {
    if (mount) { mount.textContent = "在线客服暂时无法加载，请稍后再试。The chat could not be loaded."; }
    return;
  }
  var config = JSON.parse(mount.getAttribute("data-config"));
  var storage = window.sessionStorage;

  function widgetSession() {
    try {
      var session = JSON.parse(storage.getItem(WIDGET_KEY));
      return session && typeof session === "object" ? session : null;
    } catch (error) {
      return null;
    }
  }

  // What rasa-webchat 1.0.1 stores before its first change: it drops a stored session of
  // another version, and a stored session without its state would replace its defaults.
  function freshWidgetSession() {
    return {
      version: "1.0.1",
      conversation: [],
      metadata: {},
      params: {
        connected: false, initialized: false, isChatVisible: true, isChatOpen: false,
        disabledInput: true, docViewer: false,
        connectingText: config.connectingText || "Waiting for server...",
        unreadCount: 0, messageDelayed: false, oldUrl: "", pageChangeCallbacks: {}
      }
    };
  }

  function useToken(token) {
    storage.setItem(TOKEN_KEY, token);
    var session = widgetSession();
    if (!session || session.version !== "1.0.1" || !session.params) {
      session = freshWidgetSession();
    }
    session.session_id = token; // what the widget sends in session_request and messages
    storage.setItem(WIDGET_KEY, JSON.stringify(session));
  }

  function forgetConversation() {
    storage.removeItem(TOKEN_KEY);
    storage.removeItem(WIDGET_KEY);
  }

  function requestSession(body) {
    return window.fetch("/chat/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok) {
        var error = new Error("chat session: HTTP " + response.status);
        error.status = response.status;
        throw error;
      }
      return response.json();
    });
  }

  function obtainSession() {
    var userId = mount.getAttribute("data-user-id");
    var userHash = mount.getAttribute("data-user-hash");
    var previous = storage.getItem(TOKEN_KEY);
    if (userId && userHash) {
      if (!previous || previous.indexOf("v1.shop:" + userId + ".") !== 0) {
        forgetConversation(); // another customer's conversation
      }
      return requestSession({ user_id: userId, user_hash: userHash });
    }
    if (!previous) {
      forgetConversation();
      return requestSession({});
    }
    return requestSession({ token: previous }).catch(function (error) {
      if (error.status !== 400 && error.status !== 401) { throw error; }
      forgetConversation(); // that session ended: start anew
      return requestSession({});
    });
  }

  function renewLater(session) {
    var halfLife = (session.expires_at * 1000 - Date.now()) / 2;
    window.setTimeout(function () {
      requestSession({ token: session.token }).then(function (renewed) {
        useToken(renewed.token); // sent with the next message and on a reconnect
        renewLater(renewed);
      }, function () { /* the open socket keeps its session; a reload starts anew */ });
    }, Math.max(60 * 1000, halfLife));
  }

  obtainSession().then(function (session) {
    useToken(session.token);
    renewLater(session);
    window.WebChat.default(config, mount);
    // The widget stores the confirmed sender as its session id; give it the token back (its
    // own session_confirm handler must stay: onSocketEvent would replace it).
    window.setInterval(function () {
      var token = storage.getItem(TOKEN_KEY);
      var current = widgetSession();
      if (token && current && current.session_id !== token) { useToken(token); }
    }, 250);
  }).catch(function () {
    mount.textContent = "在线客服暂时无法连接，请稍后再试。The chat could not connect.";
  });
})();
