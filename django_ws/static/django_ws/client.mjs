// django-ws browser client as an ES module:
//   import DjangoWebSocket from "/static/django_ws/client.mjs";
// client.js is a classic script that also runs as a module; importing it defines
// globalThis.DjangoWebSocket, which this module exports.
import "./client.js";

const DjangoWebSocket = globalThis.DjangoWebSocket;
export { DjangoWebSocket };
export default DjangoWebSocket;
