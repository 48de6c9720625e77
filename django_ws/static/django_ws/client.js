/*
 * django-ws browser client: a WebSocket that reconnects by itself, queues what the
 * page sends while it is away, and keeps its place in groups with history.
 *
 * No build step, no dependency. Load it with
 *
 *   <script src="{% static 'django_ws/client.js' %}"></script>   (a global)
 *   import DjangoWebSocket from "{% static 'django_ws/client.mjs' %}";  (a module)
 *
 *   const socket = new DjangoWebSocket("/ws/rooms/lobby");
 *   socket.addEventListener("message", (e) => show(e.detail.data));
 *   socket.addEventListener("state", (e) => badge(e.detail.state));
 *   socket.send({type: "say", text: "hi"});
 *   socket.close();
 *
 * docs/client.md has the options, the retry rules and the wire protocol.
 */
(function (root, factory) {
  "use strict";
  const DjangoWebSocket = factory(root);
  root.DjangoWebSocket = DjangoWebSocket;
  if (typeof module === "object" && module && module.exports) {
    module.exports = DjangoWebSocket;
  }
})(typeof globalThis !== "undefined" ? globalThis : this, function (root) {
  "use strict";

  /** Option defaults; docs/client.md explains each. */
  const DEFAULTS = {
    baseDelay: 500, // ms: the ceiling of the first retry's random delay
    maxDelay: 15000, // ms: the largest ceiling, reached after five failures
    stableAfter: 5000, // ms open before the backoff starts again from baseDelay
    maxRefusals: 2, // handshakes refused in a row by a server that answers HTTP
    maxQueue: 100, // messages kept while not open; send() returns false past it
    positions: null, // {group: [epoch, offset]} the page already rendered
    protocols: undefined, // WebSocket subprotocols to offer
    binaryType: "blob", // how binary frames arrive: "blob" or "arraybuffer"
  };

  /**
   * Close codes after which the client tries again: the server went away, restarted,
   * failed or is busy (1001, 1005, 1006, 1011, 1012, 1013, 1014), and the same codes
   * as daphne sends them (4000 + code - 1000). Any other code from a server is its
   * final word: 1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000-4999.
   */
  const RETRY_CODES = [1001, 1005, 1006, 1011, 1012, 1013, 1014, 4001, 4011, 4012, 4013, 4014];

  /** Turn a path or an http(s)/ws(s) URL into a ws(s) URL string. */
  function socketUrl(url) {
    const base = root.location ? root.location.href : undefined;
    const parsed = new URL(url, base);
    if (parsed.protocol === "http:") parsed.protocol = "ws:";
    if (parsed.protocol === "https:") parsed.protocol = "wss:";
    return parsed.href;
  }

  function isObject(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
  }

  /** Whether `frame` carries a group's position: {group, epoch, offset, ...}. */
  function hasPosition(frame) {
    return (
      isObject(frame) &&
      typeof frame.group === "string" &&
      typeof frame.epoch === "string" &&
      Number.isInteger(frame.offset)
    );
  }

  /**
   * A WebSocket to a django-ws server that reconnects with backoff and full jitter.
   *
   * Events (all `CustomEvent`s, the payload in `event.detail`):
   * - `state`: `{state, code, reason, attempt, delay, refused}`; `state` is
   *   "connecting", "open", "reconnecting" or "closed".
   * - `message`: `{data, group, epoch, offset}`; `group`, `epoch` and `offset` are
   *   set for frames of a group with history, undefined otherwise.
   * - `recovered`: `{group, recovered, epoch, offset, missed}` after a rejoin.
   */
  class DjangoWebSocket extends EventTarget {
    /**
     * @param {string} url a path ("/ws/rooms/lobby", relative to the page's host,
     *   ws: or wss: after the page's protocol) or a full ws(s):// or http(s):// URL.
     * @param {object} [options] see DEFAULTS and docs/client.md.
     */
    constructor(url, options) {
      super();
      this.url = socketUrl(url);
      this.options = Object.assign({}, DEFAULTS, options || {});
      this.state = "connecting";
      this._positions = new Map();
      const given = this.options.positions || {};
      for (const group of Object.keys(given)) {
        this._positions.set(group, [String(given[group][0]), Number(given[group][1])]);
      }
      this._queue = [];
      this._ws = null;
      this._timer = null;
      this._stableTimer = null;
      this._attempt = 0; // retries since the last connection that stayed open
      this._refusals = 0; // refused handshakes in a row
      this._stopped = false;
      this._started = false;
      this._onOnline = () => this._retryNow();
      if (root.addEventListener) root.addEventListener("online", this._onOnline);
      // A microtask later, so that listeners added after `new` see "connecting".
      queueMicrotask(() => this._connect());
    }

    /** The last position seen per group, as `{group: [epoch, offset]}`. */
    get positions() {
      const result = {};
      for (const [group, position] of this._positions) result[group] = position.slice();
      return result;
    }

    /**
     * Send `data`: strings, Blobs and ArrayBuffers as they are, anything else as JSON.
     * While not open the message waits in a queue (at most `maxQueue`) and goes out,
     * in order, once the socket opens.
     * @returns {boolean} false if dropped: the queue is full or the socket is closed.
     */
    send(data) {
      if (this._stopped || this.state === "closed") return false;
      const frame = isBinaryOrText(data) ? data : JSON.stringify(data);
      if (this._ws && this._ws.readyState === WebSocket.OPEN) {
        this._ws.send(frame);
        return true;
      }
      if (this._queue.length >= this.options.maxQueue) return false;
      this._queue.push(frame);
      return true;
    }

    /** Close for good: no more reconnects; queued messages are dropped. */
    close(code, reason) {
      if (this._stopped) return;
      this._stopped = true;
      this._queue = [];
      clearTimeout(this._timer);
      clearTimeout(this._stableTimer);
      if (root.removeEventListener) root.removeEventListener("online", this._onOnline);
      const detail = { code: code === undefined ? 1000 : code, reason: reason || "" };
      const ws = this._ws;
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.close(detail.code, detail.reason); // "closed" once the server answers
        return;
      }
      if (ws) {
        // An attempt in progress is abandoned, not reported as a failure.
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.close();
      }
      this._ws = null;
      this._setState("closed", detail);
    }

    _connect() {
      this._timer = null;
      if (this._stopped) return;
      // The first attempt is "connecting"; later ones stay "reconnecting" (_retry).
      if (!this._started) this._setState("connecting", {});
      this._started = true;
      let ws;
      try {
        ws = new WebSocket(this._urlWithPositions(), this.options.protocols);
      } catch (error) {
        // A URL or port the browser will never connect to (SecurityError, SyntaxError).
        this._finish({ code: 1006, reason: String(error && error.message) });
        return;
      }
      ws.binaryType = this.options.binaryType;
      let opened = false;
      this._ws = ws;
      ws.onopen = () => {
        opened = true;
        this._refusals = 0;
        this._stableTimer = setTimeout(() => { this._attempt = 0; }, this.options.stableAfter);
        // What waited goes first, before what "open" listeners send.
        const queued = this._queue;
        this._queue = [];
        for (const frame of queued) ws.send(frame);
        this._setState("open", {});
      };
      ws.onmessage = (event) => this._receive(event.data);
      ws.onclose = (event) => {
        if (ws !== this._ws) return;
        this._ws = null;
        clearTimeout(this._stableTimer);
        const detail = { code: event.code, reason: event.reason };
        if (this._stopped) {
          this._setState("closed", detail);
        } else if (opened) {
          if (RETRY_CODES.indexOf(event.code) >= 0) {
            this._retry(detail);
          } else {
            this._finish(detail);
          }
        } else {
          this._handshakeFailed(detail);
        }
      };
    }

    /** The URL, with `ws_since` set to the known positions (other parameters kept). */
    _urlWithPositions() {
      if (this._positions.size === 0) return this.url;
      const url = new URL(this.url);
      url.searchParams.set("ws_since", JSON.stringify(this.positions));
      return url.href;
    }

    /**
     * A browser sees close code 1006 for every handshake that fails: server down,
     * connection refused, HTTP 403 or 404. An HTTP request to the same URL tells a
     * server that answers (a refusal) from one that does not (retry); a 5xx answer
     * (a gateway whose application is down) counts as not answering.
     */
    _handshakeFailed(detail) {
      const probe = new URL(this.url);
      probe.protocol = probe.protocol === "wss:" ? "https:" : "http:";
      const sameOrigin = root.location && probe.origin === root.location.origin;
      fetch(probe.href, {
        method: "HEAD",
        cache: "no-store",
        mode: sameOrigin ? "same-origin" : "no-cors",
      }).then(
        (response) => response.type === "opaque" || response.status < 500,
        () => false
      ).then((answered) => {
        if (this._stopped) return;
        this._refusals = answered ? this._refusals + 1 : 0;
        if (this._refusals >= this.options.maxRefusals) {
          this._finish(Object.assign({ refused: true }, detail));
        } else {
          this._retry(detail);
        }
      });
    }

    _retry(detail) {
      const ceiling = Math.min(this.options.maxDelay, this.options.baseDelay * Math.pow(2, this._attempt));
      const delay = Math.random() * ceiling; // full jitter
      this._attempt += 1;
      this._setState("reconnecting", Object.assign({ attempt: this._attempt, delay: delay }, detail));
      this._timer = setTimeout(() => this._connect(), delay);
    }

    /** Skip the wait before the next attempt (the browser says it is online again). */
    _retryNow() {
      if (this._timer !== null && !this._stopped) {
        clearTimeout(this._timer);
        this._connect();
      }
    }

    _finish(detail) {
      this._stopped = true;
      this._queue = [];
      if (root.removeEventListener) root.removeEventListener("online", this._onOnline);
      this._setState("closed", detail);
    }

    _receive(raw) {
      let data = raw;
      if (typeof raw === "string") {
        try {
          data = JSON.parse(raw);
        } catch (error) {
          data = raw; // not JSON: the text as it is
        }
      }
      if (hasPosition(data) && typeof data.recovered === "boolean") {
        this._positions.set(data.group, [data.epoch, data.offset]);
        this._emit("recovered", {
          group: data.group,
          recovered: data.recovered,
          epoch: data.epoch,
          offset: data.offset,
          missed: data.missed,
        });
        return;
      }
      if (hasPosition(data) && "data" in data) {
        const last = this._positions.get(data.group);
        if (last && last[0] === data.epoch && data.offset <= last[1]) return; // seen
        this._positions.set(data.group, [data.epoch, data.offset]);
        this._emit("message", { data: data.data, group: data.group, epoch: data.epoch, offset: data.offset });
        return;
      }
      this._emit("message", { data: data, group: undefined, epoch: undefined, offset: undefined });
    }

    _setState(state, detail) {
      this.state = state;
      this._emit("state", Object.assign({
        state: state, code: undefined, reason: undefined, attempt: this._attempt,
        delay: undefined, refused: false,
      }, detail));
    }

    _emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail: detail }));
    }
  }

  function isBinaryOrText(data) {
    return (
      typeof data === "string" ||
      (typeof Blob !== "undefined" && data instanceof Blob) ||
      data instanceof ArrayBuffer ||
      ArrayBuffer.isView(data)
    );
  }

  DjangoWebSocket.DEFAULTS = DEFAULTS;
  DjangoWebSocket.RETRY_CODES = RETRY_CODES;
  return DjangoWebSocket;
});
