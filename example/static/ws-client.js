/*
 * ws-client.js: a WebSocket that reconnects by itself and shows its state.
 *
 * Plain JavaScript, no build step, no dependency. Usage:
 *
 *   const socket = new LiveSocket("/ws/chat/lobby", {
 *     state: document.getElementById("ws-state"),  // shows the state
 *     onMessage: (data) => { ... },                 // JSON already parsed
 *     onOpen: () => { ... },
 *     onStateChange: (state, detail) => { ... },
 *   });
 *   socket.send({type: "say", text: "hi"});         // false unless open
 *
 * States, written to the state element's text and its data-state attribute:
 *
 *   connecting    the first attempt
 *   open          connected
 *   reconnecting  the connection was lost or could not be made; the next attempt
 *                 comes after a delay that doubles each time (0.5 s up to 15 s),
 *                 with random jitter so that a restarted server is not hit by
 *                 every page at the same instant
 *   refused       the server is up but refused the handshake twice in a row
 *                 (for example HTTP 403 when the socket needs a login): no retry
 *   closed        closed by the page, or by the server with a code from 4000 to
 *                 4999 (the application's own codes, final, shown with the reason)
 */
(function () {
  "use strict";

  var REFUSALS_TO_GIVE_UP = 2;

  function LiveSocket(path, options) {
    options = options || {};
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    this.url = scheme + location.host + path;
    this.stateElement = options.state || null;
    this.onMessage = options.onMessage || function () {};
    this.onOpen = options.onOpen || function () {};
    this.onStateChange = options.onStateChange || function () {};
    this.minDelay = options.minDelay || 500;
    this.maxDelay = options.maxDelay || 15000;
    this.attempt = 0; // failed attempts since the last open
    this.refusals = 0; // handshakes refused in a row by a server that answers HTTP
    this.stopped = false;
    this.timer = null;
    this.ws = null;
    this.state = null;
    var self = this;
    window.addEventListener("online", function () { self.retryNow(); });
    this.connect();
  }

  LiveSocket.prototype.connect = function () {
    var self = this;
    this.timer = null;
    if (this.attempt === 0) {
      this.setState("connecting");
    } else {
      this.setState("reconnecting", "attempt " + (this.attempt + 1));
    }
    var ws = new WebSocket(this.url);
    var opened = false;
    this.ws = ws;
    ws.onopen = function () {
      opened = true;
      self.attempt = 0;
      self.refusals = 0;
      self.setState("open");
      self.onOpen();
    };
    ws.onmessage = function (event) {
      var data = event.data;
      try {
        data = JSON.parse(data);
      } catch (error) {
        // Not JSON: hand over the text as it is.
      }
      self.onMessage(data);
    };
    ws.onclose = function (event) {
      if (ws !== self.ws) return;
      self.ws = null;
      if (self.stopped) {
        self.setState("closed");
      } else if (event.code >= 4000 && event.code < 5000) {
        self.setState("closed", event.reason || "code " + event.code);
      } else if (opened) {
        self.retry("connection lost");
      } else {
        self.handshakeFailed();
      }
    };
  };

  // A failed handshake is a server that is down (retry) or one that refused the
  // socket (browsers hide the HTTP status from pages): the page's own URL tells.
  LiveSocket.prototype.handshakeFailed = function () {
    var self = this;
    fetch(location.href, { method: "HEAD", cache: "no-store" }).then(
      function () {
        if (self.stopped) return;
        self.refusals += 1;
        if (self.refusals >= REFUSALS_TO_GIVE_UP) {
          self.setState("refused", "the server refused this socket");
        } else {
          self.retry("handshake refused");
        }
      },
      function () {
        if (self.stopped) return;
        self.refusals = 0;
        self.retry("server unreachable");
      }
    );
  };

  LiveSocket.prototype.retry = function (why) {
    var ceiling = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt));
    var delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    var self = this;
    this.attempt += 1;
    this.setState("reconnecting", why + ", next try in " + (delay / 1000).toFixed(1) + " s");
    this.timer = setTimeout(function () { self.connect(); }, delay);
  };

  // Skip the wait (the browser says the network is back).
  LiveSocket.prototype.retryNow = function () {
    if (this.timer !== null && !this.stopped) {
      clearTimeout(this.timer);
      this.connect();
    }
  };

  LiveSocket.prototype.send = function (data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
    return true;
  };

  LiveSocket.prototype.close = function () {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.ws) {
      this.ws.close(1000);
    } else {
      this.setState("closed");
    }
  };

  LiveSocket.prototype.setState = function (state, detail) {
    this.state = state;
    var element = this.stateElement;
    if (element) {
      element.dataset.state = state;
      element.textContent = state;
      element.title = detail || "";
    }
    this.onStateChange(state, detail || "");
  };

  window.LiveSocket = LiveSocket;
})();
