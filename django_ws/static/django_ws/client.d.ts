// Types of django-ws's browser client (client.js, client.mjs). docs/client.md.

/** A group's last position: its epoch and the offset of the last frame seen. */
export type Position = [epoch: string, offset: number];

export type SocketState = "connecting" | "open" | "reconnecting" | "closed";

export interface DjangoWebSocketOptions {
  /** ms: the ceiling of the first retry's random delay (500). */
  baseDelay?: number;
  /** ms: the largest ceiling of a retry's random delay (15000). */
  maxDelay?: number;
  /** ms a connection stays open before the backoff starts again (5000). */
  stableAfter?: number;
  /** Handshakes refused in a row, by a server that answers HTTP, before giving up (2). */
  maxRefusals?: number;
  /** Messages kept while not open; `send` returns false past it (100). */
  maxQueue?: number;
  /** Positions the page already rendered, offered in `ws_since` from the first connect. */
  positions?: Record<string, Position> | null;
  /** WebSocket subprotocols to offer. */
  protocols?: string | string[];
  /** How binary frames arrive ("blob"). */
  binaryType?: BinaryType;
}

export interface StateDetail {
  state: SocketState;
  /** The close code of the connection that ended ("reconnecting", "closed"). */
  code: number | undefined;
  /** The close reason of the connection that ended ("reconnecting", "closed"). */
  reason: string | undefined;
  /** Retries since the last connection that stayed open. */
  attempt: number;
  /** ms until the next attempt ("reconnecting"). */
  delay: number | undefined;
  /** True when "closed" because the server refused the handshake `maxRefusals` times. */
  refused: boolean;
}

export interface MessageDetail<T = unknown> {
  /** Parsed JSON; the text if it is not JSON; a Blob or ArrayBuffer if binary. */
  data: T;
  /** Set for a frame of a group with history. */
  group: string | undefined;
  epoch: string | undefined;
  offset: number | undefined;
}

export interface RecoveredDetail {
  group: string;
  /** False: frames were lost; reload the group's state. */
  recovered: boolean;
  epoch: string;
  offset: number;
  /** How many frames the server replays (recovered) or lost (not recovered). */
  missed: number | undefined;
}

export interface DjangoWebSocketEventMap {
  state: CustomEvent<StateDetail>;
  message: CustomEvent<MessageDetail>;
  recovered: CustomEvent<RecoveredDetail>;
}

export declare class DjangoWebSocket extends EventTarget {
  static readonly DEFAULTS: Required<DjangoWebSocketOptions>;
  /** Close codes after which the client reconnects. */
  static readonly RETRY_CODES: readonly number[];

  /** A path ("/ws/rooms/lobby") or a ws(s):// or http(s):// URL. */
  constructor(url: string, options?: DjangoWebSocketOptions);

  /** The ws(s):// URL, without `ws_since`. */
  readonly url: string;
  readonly state: SocketState;
  /** The last position seen per group (a copy). */
  readonly positions: Record<string, Position>;

  /**
   * Send strings, Blobs and ArrayBuffers as they are, anything else as JSON; queue
   * while not open. False if dropped (queue full, or closed).
   */
  send(data: unknown): boolean;
  /** Close for good: no more reconnects. `code` is 1000 or 3000-4999. */
  close(code?: number, reason?: string): void;

  addEventListener<K extends keyof DjangoWebSocketEventMap>(
    type: K,
    listener: (this: DjangoWebSocket, event: DjangoWebSocketEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof DjangoWebSocketEventMap>(
    type: K,
    listener: (this: DjangoWebSocket, event: DjangoWebSocketEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

export default DjangoWebSocket;

type DjangoWebSocketClass = typeof DjangoWebSocket;

declare global {
  // `<script src=".../client.js">` defines it as a global.
  var DjangoWebSocket: DjangoWebSocketClass;
}
